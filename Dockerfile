# The single binary in a small image; build it first with `make build`.
# (No Docker engine runs in this project's CI: this file is exercised by users, not by our tests.)
FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY dist/gateway /usr/local/bin/gateway
COPY plants /opt/gateway/plants
WORKDIR /var/lib/gateway
ENV GATEWAY_DATA_DIR=/var/lib/gateway GATEWAY_HTTP__HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["serve", "--mode", "standalone"]
