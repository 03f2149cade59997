{{- /* kopf's leader election object: replicas agree through it on which one is active. */}}
{{- define "troupe-common.peering" -}}
{{- if .Values.leaderElection.enabled }}
{{- if .Values.watchNamespaces }}
{{- range $ns := .Values.watchNamespaces }}
---
apiVersion: kopf.dev/v1
kind: KopfPeering
metadata:
  name: {{ include "troupe-common.peeringName" $ }}
  namespace: {{ $ns }}
  labels:
    {{- include "troupe-common.labels" $ | nindent 4 }}
{{- end }}
{{- else }}
---
apiVersion: kopf.dev/v1
kind: ClusterKopfPeering
metadata:
  name: {{ include "troupe-common.peeringName" . }}
  labels:
    {{- include "troupe-common.labels" . | nindent 4 }}
{{- end }}
{{- end }}
{{- end }}
