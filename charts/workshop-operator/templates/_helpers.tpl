{{/* Names are DNS-1123 labels: at most 63 characters, never ending in '-'. */}}
{{- define "workshop-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "workshop-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* fullname plus a suffix, still at most 63 characters: the fullname gives way, never the suffix. */}}
{{- define "workshop-operator.suffixedName" -}}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "workshop-operator.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "workshop-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "workshop-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workshop-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "workshop-operator.labels" -}}
helm.sh/chart: {{ include "workshop-operator.chart" . }}
{{ include "workshop-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: troupe
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "workshop-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "workshop-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "workshop-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The kopf peering object's name: the operator derives it from its name (troupe-<operator>). */}}
{{- define "workshop-operator.peeringName" -}}
troupe-workshop
{{- end }}
