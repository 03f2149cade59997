{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar, maybe
   empty). troupe-common's Deployment includes it by this name: "<chart name>.configEnv". */}}
{{- define "observatory-operator.configEnv" -}}
{{- end }}
