FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
# The image's own unprivileged user (uid 1000 in the node image) owns an owner-only data directory, so the
# generated keys and the SQLite store can be written without root (issue 9 §15). Mount a volume here.
RUN mkdir -p /app/data && chown node:node /app/data && chmod 0700 /app/data
ENV PUSHGATE_DATA_DIR=/app/data PUSHGATE_STORE=sqlite:/app/data/pushgate.db
VOLUME /app/data
USER node
EXPOSE 8080
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
