{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar). */}}
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
      name: {{ include "workshop-operator.suffixedName" (list . "password-key") }}
      key: key
{{- end }}
