{{- /* /metrics, /healthz and /readyz are served on metrics.port; the Service and ServiceMonitor are optional. */}}
{{- define "troupe-common.metricsService" -}}
{{- if .Values.metrics.service.enabled }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "troupe-common.suffixedName" (list . "metrics") }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "troupe-common.labels" . | nindent 4 }}
spec:
  type: {{ .Values.metrics.service.type }}
  selector:
    {{- include "troupe-common.selectorLabels" . | nindent 4 }}
  ports:
    - name: metrics
      port: {{ .Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
{{- end }}
{{- end }}

{{- define "troupe-common.serviceMonitor" -}}
{{- if .Values.metrics.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "troupe-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "troupe-common.labels" . | nindent 4 }}
    {{- with .Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "troupe-common.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ .Values.metrics.serviceMonitor.interval }}
      scrapeTimeout: {{ .Values.metrics.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- end }}
