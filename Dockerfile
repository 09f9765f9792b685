# sipway in a container: docs/deploy.md. Build: docker build -t sipway .
# Run:   docker run -d --name sipway -p 5060:5060/udp -p 5060:5060/tcp -v sipway-data:/data sipway

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds from source where no prebuilt binary fits this platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Scripts later: `prepare` builds, and the sources are not here yet.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json ./
# Only the sources: tsconfig also names test/ and bench/, which the image does not need.
COPY src ./src
RUN npm run build && npm prune --omit=dev
# typescript stays: it is a dependency, used to type-check .ts routing policies.

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY docs ./docs
COPY examples ./examples
COPY README.md ./
# The store (sipway.db), the config (/data/sipway.json if you use one) and policies live on the volume.
RUN mkdir /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 5060/udp 5060/tcp 5061/tcp
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/dist/src/cli/main.js", "ping", "udp:127.0.0.1:5060", "--timeout", "3000"]
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["serve", "--data", "/data"]
