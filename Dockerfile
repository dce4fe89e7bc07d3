# One image for every granary role: the CSI controller, the CSI node plugin with its FUSE mount
# processes, the cache server and the CLI (warm-up, cache status). The entrypoint is `granary`; the
# chart passes each role's subcommand and flags as args.
#   docker build -t REGISTRY/granary:0.1.0 .

# Stage 1: compile the TypeScript (dev dependencies included), then keep only runtime dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
# Only the program is compiled (tsconfig.build.json: src without its tests), so the tests and benchmarks
# never reach the image and editing them does not invalidate this stage.
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

# Stage 2: a slim runtime with what FUSE mounts need.
FROM node:22-bookworm-slim
# mount (util-linux) makes the FUSE mounts (mount -t fuse.granary -o fd=N); fuse3 brings fusermount3
# for unmounting; ca-certificates for https:// object stores.
RUN apt-get update \
 && apt-get install -y --no-install-recommends util-linux mount fuse3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /opt/granary
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/proto ./proto
RUN ln -s /opt/granary/dist/src/cli/index.js /usr/local/bin/granary && chmod +x dist/src/cli/index.js
# The controller, cache and warm-up run as this unprivileged user; the node plugin needs root for
# mounts (the chart runs it privileged, as runAsUser 0).
USER 65532:65532
# Health is checked per role by the chart's probes rather than one HEALTHCHECK: the CSI roles on
# /healthz, a CSI Probe (granary csi --health-listen, or the livenessprobe sidecar), the cache server on
# /healthz and /readyz.
ENTRYPOINT ["granary"]
CMD ["--help"]
