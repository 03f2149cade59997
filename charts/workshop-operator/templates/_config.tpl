{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar). */}}
{{- define "workshop-operator.configEnv" -}}
{{- end }}
