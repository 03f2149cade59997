{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar). */}}
{{- define "observatory-operator.configEnv" -}}
{{- end }}
