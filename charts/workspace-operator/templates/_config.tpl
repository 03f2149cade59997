{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar, maybe
   empty). troupe-common's Deployment includes it by this name: "<chart name>.configEnv". */}}
{{- define "workspace-operator.configEnv" -}}
- name: TROUPE_WORKSPACE_POLICY
  value: {{ printf "%s/%s" .Release.Namespace .Values.workspaces.policyConfigMap | quote }}
- name: TROUPE_WORKSPACE_DEFAULT_CONCURRENCY
  value: {{ .Values.workspaces.defaultConcurrency | quote }}
- name: TROUPE_WORKSPACE_DISK_NAMESPACE
  value: {{ .Values.workspaces.vmDiskImageNamespace | default .Release.Namespace | quote }}
- name: TROUPE_WORKSPACE_FAIL_AFTER
  value: {{ .Values.workspaces.failAfter | quote }}
{{- end }}
