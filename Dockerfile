# Commercial-edition POP image: a static clavis-telemetry on a distroless,
# shell-less base, running as an unprivileged user.
#
#   docker build -t clavis-telemetry .
#   docker run --net=host --pid=host -v /:/host:ro,rslave \
#     -v /var/lib/clavitor/vaults:/vaults:ro -v /var/log/nginx:/logs:ro \
#     clavis-telemetry --path.procfs=/host/proc --path.sysfs=/host/sys --path.rootfs=/host \
#     --vault.data-dir=/vaults --accesslog.path=/logs/access.log

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath -tags commercial \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" \
      -o /out/clavis-telemetry ./cmd/clavis-telemetry \
 && mkdir -p /out/state \
 && /out/clavis-telemetry --version

# static-debian12:nonroot has no shell, no package manager, and runs as
# uid 65532 by default.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/clavis-telemetry /usr/bin/clavis-telemetry
# Scanner log lives here (0600, rotated, 30-day retention).
COPY --from=build --chown=65532:65532 /out/state /var/lib/clavis-telemetry
USER 65532:65532
EXPOSE 9745
VOLUME ["/var/lib/clavis-telemetry"]
ENTRYPOINT ["/usr/bin/clavis-telemetry"]
CMD ["--tarpit.log.file=/var/lib/clavis-telemetry/tarpit.log"]
