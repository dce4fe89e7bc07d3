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

{{/*
The Kubernetes version the render is for, or "" when helm was told none; fails the render for a version
older than 1.26, the oldest the chart supports. `helm template` without --kube-version claims v1.20.0,
older than any the chart supports, so that exact version means "not told" and the render is for a
current cluster, as one applied with kubectl would be. helm install and upgrade read the cluster's
version, and --kube-version (as Argo CD passes) is taken as given.
*/}}
{{- define "granary.kubeVersion" -}}
{{- $version := .Capabilities.KubeVersion.Version -}}
{{- if ne $version "v1.20.0" -}}
{{- if not (semverCompare ">=1.26.0-0" $version) -}}
{{- fail (printf "granary needs Kubernetes 1.26 or later, and the cluster runs %s: upgrade it first (or give helm template the --kube-version of the cluster the render is for)" $version) -}}
{{- end -}}
{{- $version -}}
{{- end -}}
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

{{/*
"true" when the cache pods serve the S3 endpoint (cache.s3Gateway): the cache and the gateway enabled and access
keys given, as an existing Secret or made by the chart; else empty (without keys it would refuse every request:
NOTES.txt says what to set). Fails the render for keys given both ways, or the gateway on the cache's own port.
*/}}
{{- define "granary.s3Gateway" -}}
{{- $gateway := .Values.cache.s3Gateway -}}
{{- if and .Values.cache.enabled $gateway.enabled -}}
{{- if and $gateway.keys.existingSecret $gateway.keys.create -}}
{{- fail "cache.s3Gateway.keys: set existingSecret (a Secret you manage, with the key keys.json) or create (a Secret the chart makes), not both" -}}
{{- end -}}
{{- if or $gateway.keys.existingSecret $gateway.keys.create -}}
{{- if eq (int $gateway.port) (int .Values.cache.port) -}}
{{- fail (printf "cache.s3Gateway.port %d is the cache server's own port (cache.port): give the S3 endpoint another, such as 9000" (int $gateway.port)) -}}
{{- end -}}
true
{{- end -}}
{{- end -}}
{{- end }}

{{/* Name of the cache's S3 endpoint Service: clients set AWS_ENDPOINT_URL=http://NAME.NAMESPACE.svc:PORT. */}}
{{- define "granary.s3GatewayServiceName" -}}
{{ include "granary.fullname" . }}-s3
{{- end }}

{{/* Name of the S3 endpoint's access keys Secret (an existing one, or the chart's from cache.s3Gateway.keys.create). */}}
{{- define "granary.s3GatewayKeysSecretName" -}}
{{ .Values.cache.s3Gateway.keys.existingSecret | default (printf "%s-s3-gateway-keys" (include "granary.fullname" .)) }}
{{- end }}

{{/* Where the cache pods mount the access keys Secret; the gateway reads keys.json there (granary cache serve --s3-keys-file). */}}
{{- define "granary.s3GatewayKeysDir" -}}/etc/granary/s3-keys{{- end }}

{{/* Where the cache pods read the S3 endpoint's certificate and key (cache.s3Gateway.tls.existingSecret). */}}
{{- define "granary.s3GatewayTlsDir" -}}/etc/granary/s3-tls{{- end }}

{{/* A size value as written (8Gi, 1.5TiB, 4194304), a number as its digits: what a template passes to a granary flag, whose parser reads it. */}}
{{- define "granary.sizeText" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) -}}
{{- /* A YAML number reaches templates as a float64, which prints as 8.589934592e+09. */ -}}
{{- printf "%d" (int64 .) -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end }}

{{/*
A size value in bytes, read as src/config/size.ts parseByteSize reads it: the same pattern (values.schema.json
$defs.size, kept equal by e2e/chart/sizes.test.ts), exact integer arithmetic, and a fail for a fraction of a
byte or a size past 2^53 - 1. Templates have no submatches, big integers or powers, hence the long way round.
*/}}
{{- define "granary.bytes" -}}
{{- $text := include "granary.sizeText" . -}}
{{- $pattern := `^\s*([0-9]+)(?:\.([0-9]+))?\s*([kKmMgGtTpPeE][iI]?[bB]?|[bB])?\s*$` -}}
{{- $forms := "write bytes (4194304) or a number with a unit: binary Ki, Mi, Gi, Ti, Pi, Ei (512Mi, 8Gi, 1.5Ti) or decimal k, M, G, T, P, E (500G), each optionally followed by B (8GiB, 100GB)" -}}
{{- if not (regexMatch $pattern $text) -}}
{{- fail (printf "%q is not a size: %s" $text $forms) -}}
{{- end -}}
{{- $maxSafe := 9007199254740991 -}}
{{- /* 1.50 is 1.5 and 007 is 7: after this, the last decimal (if any) is not 0 and the digits start with 1-9. */ -}}
{{- $fraction := regexReplaceAll "0+$" (regexReplaceAll $pattern $text "${2}") "" -}}
{{- $digits := regexReplaceAll "^0+" (printf "%s%s" (regexReplaceAll $pattern $text "${1}") $fraction) "" | default "0" -}}
{{- $unit := regexReplaceAll $pattern $text "${3}" | lower | trimSuffix "b" -}}
{{- $power := get (dict "" 0 "k" 1 "m" 2 "g" 3 "t" 4 "p" 5 "e" 6) (substr 0 1 $unit) -}}
{{- $decimals := len $fraction -}}
{{- $notWhole := printf "%q is not a whole number of bytes: write it in a smaller unit or with fewer decimals (%s)" $text $forms -}}
{{- $tooLarge := printf "%q is too large: at most %d bytes, 1 byte short of 8Pi" $text $maxSafe -}}
{{- /* 18 digits fit an int64 whatever they are; more are past 2^53 - 1, or decimals the chart cannot add up. */ -}}
{{- if and (gt (len $digits) 18) (eq $decimals 0) }}{{ fail $tooLarge }}{{ end -}}
{{- if gt (len $digits) 18 -}}
{{- fail (printf "%q has more digits than the chart can add up (18, decimals included): write it with fewer decimals" $text) -}}
{{- end -}}
{{- if hasSuffix "i" $unit -}}
{{- /* digits x 2^(10 power) / 10^decimals: whole when 5^decimals divides the digits and decimals <= 10 power (more would need a 10 to divide them, but they end in 1-9). */ -}}
{{- $bits := mul 10 $power -}}
{{- if gt $decimals (int $bits) }}{{ fail $notWhole }}{{ end -}}
{{- $five := 1 -}}
{{- range until $decimals }}{{ $five = mul $five 5 }}{{ end -}}
{{- $number := atoi $digits -}}
{{- if ne (mod $number $five) 0 }}{{ fail $notWhole }}{{ end -}}
{{- $two := 1 -}}
{{- range until (int (sub $bits $decimals)) }}{{ $two = mul $two 2 }}{{ end -}}
{{- if gt (div $number $five) (div $maxSafe $two) }}{{ fail $tooLarge }}{{ end -}}
{{- mul (div $number $five) $two -}}
{{- else -}}
{{- /* digits x 10^(3 power - decimals): whole when decimals <= 3 power. */ -}}
{{- $zeros := sub (mul 3 $power) $decimals -}}
{{- if lt $zeros 0 }}{{ fail $notWhole }}{{ end -}}
{{- $bytes := regexReplaceAll "^0+(.)" (printf "%s%s" $digits (repeat (int $zeros) "0")) "${1}" -}}
{{- if or (gt (len $bytes) 16) (gt (atoi $bytes) $maxSafe) }}{{ fail $tooLarge }}{{ end -}}
{{- $bytes -}}
{{- end -}}
{{- end }}

{{/* The argument of a granary size flag: the value as written, once granary.bytes has checked it. */}}
{{- define "granary.sizeFlag" -}}
{{- $_ := include "granary.bytes" . -}}
{{- include "granary.sizeText" . -}}
{{- end }}

{{/* A byte count as a Kubernetes quantity: in Mi when whole (as an operator would write it), else in bytes. */}}
{{- define "granary.quantity" -}}
{{- if eq (mod (int64 .) 1048576) 0 -}}{{ div (int64 .) 1048576 }}Mi{{- else -}}{{ int64 . }}{{- end -}}
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
