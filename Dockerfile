# keygate: a static binary on distroless, running as a non-root user.
# Build:  docker build --build-arg VERSION=0.1.0 -t ghcr.io/keygate/keygate:0.1.0 .
# Size:   about 16 MB (a 14 MB static binary on the ~2 MB distroless static base).

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/keygate ./cmd/keygate \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keygate /keygate
# The embedded store's directory (mount a volume here; the root filesystem can stay read-only).
COPY --from=build --chown=65532:65532 /out/data /var/lib/keygate
ENV KEYGATE_DATA_DIR=/var/lib/keygate
# Studio API, ingestion API, remote management, ops (/healthz, /readyz, /metrics).
EXPOSE 4800 4810 4802 9090
USER 65532:65532
ENTRYPOINT ["/keygate"]
CMD ["serve"]
