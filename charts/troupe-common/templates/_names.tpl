{{- /*
Names and labels. Every template here takes the operator chart's root context (`.`), so .Chart,
.Values and .Release are the operator chart's. Names are DNS-1123 labels: at most 63 characters, never
ending in '-'.
*/}}

{{- /* The operator's name (workshop), from the chart annotation troupe.dev/operator. */}}
{{- define "troupe-common.operator" -}}
{{- required "Chart.yaml needs the annotation troupe.dev/operator: <operator>" (index (.Chart.Annotations | default dict) "troupe.dev/operator") }}
{{- end }}

{{- define "troupe-common.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "troupe-common.fullname" -}}
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

{{- /* fullname plus a suffix, still at most 63 characters: the fullname gives way, never the suffix.
Called as (list . "metrics"). */}}
{{- define "troupe-common.suffixedName" -}}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "troupe-common.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "troupe-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "troupe-common.selectorLabels" -}}
app.kubernetes.io/name: {{ include "troupe-common.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "troupe-common.labels" -}}
helm.sh/chart: {{ include "troupe-common.chart" . }}
{{ include "troupe-common.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: troupe
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "troupe-common.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "troupe-common.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "troupe-common.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- /* The kopf peering object's name: the operator derives it from its name (troupe-<operator>). */}}
{{- define "troupe-common.peeringName" -}}
troupe-{{ include "troupe-common.operator" . }}
{{- end }}
