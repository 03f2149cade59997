{{- /* The part of NOTES.txt every operator chart shares; the chart adds how to create its objects. */}}
{{- define "troupe-common.notes" -}}
The Troupe {{ include "troupe-common.operator" . }} operator is installed in namespace {{ .Release.Namespace }}
(watching {{ if .Values.watchNamespaces }}{{ join ", " .Values.watchNamespaces }}{{ else }}all namespaces{{ end }}).

Check it is running:
  kubectl -n {{ .Release.Namespace }} rollout status deployment/{{ include "troupe-common.fullname" . }}
{{- if .Values.metrics.service.enabled }}

Metrics: service {{ include "troupe-common.suffixedName" (list . "metrics") }}, port {{ .Values.metrics.port }}, path /metrics
{{- end }}
{{- end }}
