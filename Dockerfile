# syntax=docker/dockerfile:1
# payledger: one static binary on a minimal, non-root runtime.

FROM golang:1.26-alpine AS build
WORKDIR /src
# Modules first so that a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO off: the SQLite driver is pure Go, so the binary needs no libc and
# runs on any base image.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/payledger ./cmd/payledger

# Alpine rather than distroless or scratch only for busybox wget, which the
# health check runs; the binary itself needs nothing from the image.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata \
    && addgroup -S -g 10001 payledger \
    && adduser -S -D -H -u 10001 -G payledger payledger \
    && mkdir -p /data && chown payledger:payledger /data
COPY --from=build /out/payledger /usr/local/bin/payledger
USER 10001:10001
# Inside a container the server must listen on every interface; the
# embedded store (when no database URL is set) lives on the volume.
ENV PAYLEDGER_HTTP_ADDR=0.0.0.0:8080 \
    PAYLEDGER_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD wget -q -O /dev/null http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["payledger"]
CMD ["serve"]
