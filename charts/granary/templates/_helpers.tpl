{{/* Names and labels shared by every template. */}}

{{/* The driver name; fixed in the code (src/config/csi.ts DRIVER_NAME), so not a value. */}}
{{- define "granary.driverName" -}}csi.granary.dev{{- end }}

{{/* Base name of every object: the release name, or release-chart when the release name lacks "granary". */}}
{{- define "granary.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{/* Labels on every object. */}}
{{- define "granary.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "cache"). */}}
{{- define "granary.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The granary image reference. */}}
{{- define "granary.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Name of the object-store Secret (the chart's or an existing one). */}}
{{- define "granary.s3SecretName" -}}
{{ .Values.secrets.existingSecret | default (printf "%s-s3" (include "granary.fullname" .)) }}
{{- end }}

{{/* Name of the cache token Secret (the chart's or an existing one). */}}
{{- define "granary.tokenSecretName" -}}
{{ .Values.cache.token.existingSecret | default (printf "%s-cache-token" (include "granary.fullname" .)) }}
{{- end }}

{{/* Name of the cache's headless Service, which clients discover the cache servers from. */}}
{{- define "granary.cacheServiceName" -}}
{{ include "granary.fullname" . }}-cache
{{- end }}

{{/* Where every pod that talks to the cache mounts the token Secret. */}}
{{- define "granary.tokenDir" -}}/etc/granary/token{{- end }}

{{/* A size such as 512MiB, 8GiB or 1TiB in MiB (values.schema.json admits only these units). */}}
{{- define "granary.mebibytes" -}}
{{- $number := regexFind "^[0-9]+" . | atoi -}}
{{- if hasSuffix "TiB" . -}}{{ mul $number 1048576 }}
{{- else if hasSuffix "GiB" . -}}{{ mul $number 1024 }}
{{- else -}}{{ $number }}
{{- end -}}
{{- end }}

{{/* The AWS_* environment of a pod that reads the object store itself (cache, warm-up), from the S3 Secret. */}}
{{- define "granary.s3Env" -}}
{{- $secret := include "granary.s3SecretName" . -}}
{{- range $name, $key := dict "AWS_ENDPOINT_URL" "endpoint" "AWS_REGION" "region" "AWS_ACCESS_KEY_ID" "accessKeyID" "AWS_SECRET_ACCESS_KEY" "secretAccessKey" "AWS_SESSION_TOKEN" "sessionToken" }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end }}

{{/* Hardened container security context for the unprivileged roles. */}}
{{- define "granary.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* Pod security context of the unprivileged roles: the image's user 65532, so sidecars share the CSI socket. */}}
{{- define "granary.restrictedPod" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* "true" when granary csi registers with the kubelet and serves /healthz itself (kubeletIntegration: builtin), else empty. */}}
{{- define "granary.builtinKubeletIntegration" -}}
{{- if eq .Values.kubeletIntegration "builtin" }}true{{ end -}}
{{- end }}

{{/* The port of GET /healthz in the controller and node plugin pods (granary csi --health-listen, or the livenessprobe sidecar). */}}
{{- define "granary.healthPort" -}}9808{{- end }}

{{/* The health port of a granary CSI container, an item of its ports. */}}
{{- define "granary.csiHealthzPort" -}}
- name: healthz
  containerPort: {{ include "granary.healthPort" . }}
{{- end }}

{{/* The liveness probe of a granary CSI container: the kubelet's GET /healthz on its healthz port, answered from a CSI Probe. */}}
{{- define "granary.csiLivenessProbe" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: healthz
  initialDelaySeconds: 10
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 5
{{- end }}

{{/* The livenessprobe sidecar (kubeletIntegration: sidecars); call with (dict "root" $ "socketVolume" NAME "securityContext" YAML). */}}
{{- define "granary.livenessProbeSidecar" -}}
- name: liveness-probe
  image: {{ .root.Values.sidecars.livenessProbe.image }}
  imagePullPolicy: {{ .root.Values.sidecars.pullPolicy }}
  args:
    - --csi-address=/csi/csi.sock
    - --health-port={{ include "granary.healthPort" .root }}
  securityContext:
    {{- .securityContext | nindent 4 }}
  resources:
    {{- toYaml .root.Values.sidecars.livenessProbe.resources | nindent 4 }}
  volumeMounts:
    - name: {{ .socketVolume }}
      mountPath: /csi
{{- end }}
