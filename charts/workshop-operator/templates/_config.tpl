{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar, maybe
   empty). troupe-common's Deployment includes it by this name: "<chart name>.configEnv". */}}
{{- define "workshop-operator.configEnv" -}}
- name: TROUPE_WORKSHOP_INGRESS_CLASS
  value: {{ .Values.workshops.ingressClassName | quote }}
- name: TROUPE_WORKSHOP_FAIL_AFTER
  value: {{ .Values.workshops.failAfter | quote }}
- name: TROUPE_WORKSHOP_RESTART_AFTER
  value: {{ .Values.workshops.restartAfter | quote }}
- name: TROUPE_WORKSHOP_PASSWORD_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "troupe-common.suffixedName" (list . "password-key") }}
      key: key
{{- end }}
