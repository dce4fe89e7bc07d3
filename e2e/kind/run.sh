#!/usr/bin/env bash
# granary on a local kind cluster, end to end: build the image, create a cluster, run an S3 server in
# it, helm install the chart (charts/granary/examples/kind.yaml), run the training example (writes
# checkpoints and a model through a read-write PVC), the warm-up example (loads the model into the
# cache), then the inference example (a static read-only PV on the model's prefix) and check that its
# pods read exactly what the Job wrote.
#
# Needs docker, kind, kubectl and helm on PATH, and the fuse module loaded on the host (modprobe fuse).
# It does not run in the project's CI (no container engine there); run it before a release.
#
#   e2e/kind/run.sh                 # creates cluster "granary-e2e", deletes it at the end
#   KEEP_CLUSTER=1 e2e/kind/run.sh  # keeps it for poking around (kind delete cluster --name granary-e2e)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER="${CLUSTER:-granary-e2e}"
IMAGE="granary:dev"                   # the image charts/granary/examples/kind.yaml names
VERSITYGW_IMAGE="${VERSITYGW_IMAGE:-versity/versitygw:v1.8.0}"   # the S3 server the tests use (e2e/tools/versions.json)
S3_NAMESPACE="granary-e2e"            # kind.yaml's secrets.endpoint: http://s3.granary-e2e.svc:9000
BUCKET="granary-volumes"              # kind.yaml's StorageClass bucket and the examples' volumeHandle
EXAMPLES="$ROOT/manifests/examples"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "kind e2e: FAILED: $*" >&2; exit 1; }
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not on PATH"
done
[ -c /dev/fuse ] || fail "/dev/fuse is missing on this host: modprobe fuse"

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- diagnostics" >&2
    kubectl get pods -A -o wide >&2 || true
    kubectl -n granary logs daemonset/granary-node -c granary --tail=50 >&2 || true
    kubectl -n granary logs deployment/granary-controller -c granary --tail=50 >&2 || true
  fi
  if [ "${KEEP_CLUSTER:-}" != 1 ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "build $IMAGE"
docker build -t "$IMAGE" "$ROOT"

step "create kind cluster $CLUSTER (a control plane and two workers)"
kind create cluster --name "$CLUSTER" --wait 120s --config - <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
  - role: worker
YAML
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "S3 server (versitygw, posix backend) in namespace $S3_NAMESPACE"
kubectl create namespace "$S3_NAMESPACE"
kubectl apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: { name: s3, namespace: $S3_NAMESPACE }
spec:
  selector: { matchLabels: { app: s3 } }
  template:
    metadata: { labels: { app: s3 } }
    spec:
      containers:
        - name: versitygw
          image: $VERSITYGW_IMAGE
          args: [--port, ":9000", posix, /data]
          env:
            # kind.yaml's secrets.accessKeyID / secretAccessKey / region.
            - { name: ROOT_ACCESS_KEY_ID, value: granary }
            - { name: ROOT_SECRET_ACCESS_KEY, value: granary-e2e-secret }
            - { name: VGW_REGION, value: us-east-1 }
          ports: [{ containerPort: 9000 }]
          readinessProbe: { tcpSocket: { port: 9000 } }
          volumeMounts: [{ name: data, mountPath: /data }]
      volumes: [{ name: data, emptyDir: {} }]
---
apiVersion: v1
kind: Service
metadata: { name: s3, namespace: $S3_NAMESPACE }
spec:
  selector: { app: s3 }
  ports: [{ port: 9000, targetPort: 9000 }]
YAML
kubectl -n "$S3_NAMESPACE" rollout status deployment/s3 --timeout=180s
# The bucket, created with the SDK the granary image already carries.
kubectl -n "$S3_NAMESPACE" run make-bucket --image="$IMAGE" --image-pull-policy=Never --restart=Never --rm -i --quiet \
  --env=AWS_ENDPOINT_URL=http://s3.$S3_NAMESPACE.svc:9000 --env=AWS_REGION=us-east-1 \
  --env=AWS_ACCESS_KEY_ID=granary --env=AWS_SECRET_ACCESS_KEY=granary-e2e-secret \
  --command -- node -e "
    const { S3Client, CreateBucketCommand } = require('/opt/granary/node_modules/@aws-sdk/client-s3');
    new S3Client({ forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: '$BUCKET' }))
      .then(() => console.log('bucket $BUCKET created'), (e) => { console.error(e); process.exit(1); });"

step "helm install granary (charts/granary/examples/kind.yaml)"
helm install granary "$ROOT/charts/granary" --namespace granary --create-namespace \
  -f "$ROOT/charts/granary/examples/kind.yaml" --wait --timeout 5m
kubectl -n granary get pods -o wide

step "training example: checkpoints through a read-write PVC"
kubectl apply -f "$EXAMPLES/training-job.yaml"
kubectl wait --for=condition=complete job/train-llm --timeout=10m || fail "the training Job did not complete"
kubectl logs job/train-llm
written="$(kubectl logs job/train-llm | awk '/  model.bin$/ { print $1 }')"
[ -n "$written" ] || fail "the training Job printed no sha256 for model.bin"

step "warm-up example: the model into the cluster cache"
# The examples name the image as a release would push it; here it is the locally built one.
sed "s|image: granary:0.1.0|image: $IMAGE\n          imagePullPolicy: Never|" "$EXAMPLES/warmup-job.yaml" | kubectl apply -f -
kubectl -n granary wait --for=condition=complete job/warmup-llm-model --timeout=10m || fail "the warm-up Job did not complete"
kubectl -n granary logs job/warmup-llm-model

step "inference example: the model read-only from a static PV"
kubectl apply -f "$EXAMPLES/inference-deployment.yaml"
kubectl rollout status deployment/llm-server --timeout=5m || fail "llm-server did not become ready (its pods check the model's sha256)"
for pod in $(kubectl get pods -l app=llm-server -o name); do
  kubectl logs "$pod" | grep -q '^model.bin: OK$' || fail "$pod did not read the model the Job wrote"
  read_back="$(kubectl exec "$pod" -- sha256sum /model/model.bin | awk '{ print $1 }')"
  [ "$read_back" = "$written" ] || fail "$pod read sha256 $read_back, the Job wrote $written"
  # Read-only: a write must fail.
  if kubectl exec "$pod" -- sh -c 'echo x > /model/intruder' 2>/dev/null; then fail "$pod could write to its read-only model volume"; fi
done

step "PASSED: the inference pods read what the training Job wrote ($written)"
