{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar, maybe
   empty). troupe-common's Deployment includes it by this name: "<chart name>.configEnv". */}}
{{- define "devserver-operator.configEnv" -}}
- name: TROUPE_DEVSERVER_IMAGE
  value: {{ .Values.devservers.image | quote }}
- name: TROUPE_DEVSERVER_SSH_SERVICE_TYPE
  value: {{ .Values.devservers.sshServiceType | quote }}
{{- end }}
