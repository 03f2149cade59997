{{- /*
Least privilege, from the operator chart's files/rbac.yaml, which `make crds` generates from the plugin's
declarations (tools/charts.py). Watching all namespaces: one ClusterRole bound cluster-wide, with the
namespaced, allNamespaces and cluster rules. With watchNamespaces: the namespaced and watchNamespaces
rules in a Role in each of those namespaces, and a ClusterRole only when the operator has cluster-scoped
resources (rules under cluster).
*/}}
{{- define "troupe-common.rbac" -}}
{{- if .Values.rbac.create }}
{{- $rules := .Files.Get "files/rbac.yaml" | fromYaml }}
{{- if or (not $rules) (hasKey $rules "Error") }}
{{- fail (printf "files/rbac.yaml of chart %s is missing or not YAML (run `make crds`)" .Chart.Name) }}
{{- end }}
{{- $fullname := include "troupe-common.fullname" . }}
{{- $sa := include "troupe-common.serviceAccountName" . }}
{{- $cluster := $rules.cluster | default list }}
{{- if .Values.watchNamespaces }}
{{- $namespaced := concat ($rules.namespaced | default list) ($rules.watchNamespaces | default list) }}
{{- range $ns := .Values.watchNamespaces }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $fullname }}
  namespace: {{ $ns }}
  labels:
    {{- include "troupe-common.labels" $ | nindent 4 }}
rules:
  {{- toYaml $namespaced | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $fullname }}
  namespace: {{ $ns }}
  labels:
    {{- include "troupe-common.labels" $ | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $fullname }}
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ $.Release.Namespace }}
{{- end }}
{{- end }}
{{- $clusterWide := $cluster }}
{{- if not .Values.watchNamespaces }}
{{- $clusterWide = concat ($rules.namespaced | default list) ($rules.allNamespaces | default list) $cluster }}
{{- end }}
{{- if $clusterWide }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "troupe-common.labels" . | nindent 4 }}
rules:
  {{- toYaml $clusterWide | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "troupe-common.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $fullname }}
subjects:
  - kind: ServiceAccount
    name: {{ $sa }}
    namespace: {{ .Release.Namespace }}
{{- end }}
{{- end }}
{{- end }}
