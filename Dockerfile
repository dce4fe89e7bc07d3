# One image for every granary role (controller, node plugin, mount, cache, CLI).
# Stage 1 builds the TypeScript; stage 2 is a slim runtime with mount(8) for FUSE mounts.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY proto ./proto
COPY src ./src
COPY e2e ./e2e
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --ignore-scripts

FROM node:22-bookworm-slim
# util-linux provides mount/umount (FUSE mounts are made with mount -t fuse.granary -o fd=N);
# fuse3 provides fusermount3 for unmounting and the kernel-module helpers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends util-linux fuse3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/granary
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
RUN ln -s /opt/granary/dist/src/cli/index.js /usr/local/bin/granary && chmod +x dist/src/cli/index.js
# The node plugin needs root for mounts (the chart runs it privileged); the controller and
# cache run as this unprivileged user.
USER 65532:65532
ENTRYPOINT ["granary"]
CMD ["--help"]
