# syntax=docker/dockerfile:1
# wizfetch container image: a static binary on distroless, running as the nonroot user.
# The image listens on 0.0.0.0:8080, so an auth token is required (WIZFETCH_SERVER_AUTH_TOKEN or
# server.auth_token_file): the daemon refuses to start without one (DESIGN.md §7).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/wizfetch ./cmd/wizfetch \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wizfetch /usr/local/bin/wizfetch
# The data dir holds the bbolt store and the JSONL file; nonroot is uid/gid 65532 in distroless.
COPY --from=build --chown=65532:65532 /out/data /var/lib/wizfetch
COPY config/wizfetch.example.yaml /etc/wizfetch/wizfetch.yaml
ENV WIZFETCH_CONFIG=/etc/wizfetch/wizfetch.yaml \
    WIZFETCH_SERVER_LISTEN=0.0.0.0:8080
USER nonroot:nonroot
VOLUME ["/var/lib/wizfetch"]
EXPOSE 8080
# `wizfetch healthcheck` asks the running daemon's /healthz (it arrives with the operations issue).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/wizfetch", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/wizfetch"]
CMD ["run"]
