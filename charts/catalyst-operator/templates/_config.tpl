{{- /* Operator settings from values, as environment variables the plugin reads (a list of EnvVar, maybe
   empty). troupe-common's Deployment includes it by this name: "<chart name>.configEnv". */}}
{{- define "catalyst-operator.configEnv" -}}
- name: TROUPE_CATALYST_PREVIEW_DOMAIN
  value: {{ .Values.environments.previewDomain | quote }}
- name: TROUPE_CATALYST_INGRESS_CLASS
  value: {{ .Values.environments.ingressClassName | quote }}
- name: TROUPE_CATALYST_CLUSTER_ISSUER
  value: {{ .Values.environments.clusterIssuer | quote }}
- name: TROUPE_CATALYST_INGRESS_NAMESPACE
  value: {{ .Values.environments.ingressControllerNamespace | quote }}
- name: TROUPE_CATALYST_READY_TIMEOUT_SECONDS
  value: {{ .Values.environments.readyTimeoutSeconds | quote }}
- name: TROUPE_CATALYST_INSECURE_REGISTRIES
  value: {{ join "," .Values.environments.insecureRegistries | quote }}
- name: TROUPE_CATALYST_DEFAULT_REQUESTS
  value: {{ .Values.environments.containerDefaults.requests | toJson | quote }}
- name: TROUPE_CATALYST_DEFAULT_LIMITS
  value: {{ .Values.environments.containerDefaults.limits | toJson | quote }}
- name: TROUPE_CATALYST_BUILDER
  value: {{ .Values.build.builder | quote }}
- name: TROUPE_CATALYST_BUILDER_IMAGE
  value: {{ .Values.build.image | quote }}
- name: TROUPE_CATALYST_BUILD_TTL_SECONDS
  value: {{ .Values.build.ttlSecondsAfterFinished | quote }}
- name: TROUPE_CATALYST_BUILD_POD_ANNOTATIONS
  value: {{ .Values.build.podAnnotations | toJson | quote }}
- name: TROUPE_CATALYST_HELM
  value: {{ .Values.tools.helm | quote }}
- name: TROUPE_CATALYST_KUBECTL
  value: {{ .Values.tools.kubectl | quote }}
- name: TROUPE_CATALYST_GIT
  value: {{ .Values.tools.git | quote }}
{{- end }}
