{{- /*
The operator Deployment: the restricted Pod Security profile (from values podSecurityContext and
securityContext), /healthz and /readyz probes on the metrics port, leader election unless turned off.
The operator chart's own settings come in as environment variables from its template
"<chart name>.configEnv" (a list of EnvVar; it may be empty), which every operator chart defines.
*/}}
{{- define "troupe-common.deployment" }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "troupe-common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "troupe-common.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "troupe-common.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "troupe-common.selectorLabels" . | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "troupe-common.serviceAccountName" . }}
      automountServiceAccountToken: true
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: operator
          image: {{ include "troupe-common.image" . }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args:
            {{- if .Values.watchNamespaces }}
            {{- range .Values.watchNamespaces }}
            - --namespace={{ . }}
            {{- end }}
            {{- else }}
            - --all-namespaces
            {{- end }}
            {{- with .Values.selector }}
            - {{ printf "--selector=%s" . | quote }}
            {{- end }}
            {{- if not .Values.leaderElection.enabled }}
            - --standalone
            {{- end }}
            - --metrics-port={{ .Values.metrics.port }}
            {{- if eq .Values.logLevel "debug" }}
            - --verbose
            {{- end }}
            {{- with .Values.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            {{- include (printf "%s.configEnv" .Chart.Name) . | nindent 12 }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: metrics
              containerPort: {{ .Values.metrics.port }}
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /healthz
              port: metrics
            initialDelaySeconds: 10
            periodSeconds: 20
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: metrics
            periodSeconds: 10
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        # readOnlyRootFilesystem: Python and kopf still want a writable /tmp.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
