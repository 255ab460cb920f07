# Commercial-edition POP image: a static clavis-telemetry on a distroless,
# shell-less base, running as an unprivileged user.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg REVISION=$(git rev-parse HEAD) -t clavis-telemetry .
#   docker run --net=host --pid=host -v /:/host:ro,rslave \
#     -v /etc/clavis-telemetry:/etc/clavis-telemetry:ro \
#     -v /var/lib/clavitor/vaults:/vaults:ro -v /var/log/nginx:/logs:ro \
#     clavis-telemetry --path.procfs=/host/proc --path.sysfs=/host/sys --path.rootfs=/host \
#     --vault.data-dir=/vaults --accesslog.path=/logs/access.log
#
# The scanner log and the web config (TLS + basic auth) are part of the
# ENTRYPOINT, so arguments given to `docker run` add to them instead of
# replacing them: /metrics is never served in the clear by accident, and a
# missing /etc/clavis-telemetry/web.yml stops the container at start-up
# (exit 2, naming the file).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# .dockerignore keeps bin/, .git and editor files out of the context.
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
# The Makefile's own target, so the image gets the same flags and ldflags
# as `make build` (a test checks the Dockerfile builds no other way).
RUN make commercial BIN=/out VERSION=${VERSION} REVISION=${REVISION} BRANCH=docker \
 && mkdir -p /out/state \
 && /out/clavis-telemetry-commercial --version

# static-debian12:nonroot has no shell, no package manager, and runs as
# uid 65532 by default.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/clavis-telemetry-commercial /usr/bin/clavis-telemetry
# Scanner log lives here (0600, rotated, 30-day retention).
COPY --from=build --chown=65532:65532 /out/state /var/lib/clavis-telemetry
USER 65532:65532
EXPOSE 9745
VOLUME ["/var/lib/clavis-telemetry"]
ENTRYPOINT ["/usr/bin/clavis-telemetry", "--tarpit.log.file=/var/lib/clavis-telemetry/tarpit.log", "--web.config.file=/etc/clavis-telemetry/web.yml"]
