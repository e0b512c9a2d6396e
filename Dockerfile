# Multi-stage build: compile in the Rust image, run on slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
# The etcd client's build runs protoc (with the well-known types).
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin switchyard

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/switchyard switchyard && mkdir -p /var/lib/switchyard && chown switchyard /var/lib/switchyard
COPY --from=build /src/target/release/switchyard /usr/local/bin/switchyard
COPY config /etc/switchyard
USER switchyard
EXPOSE 8080 9901
ENTRYPOINT ["switchyard"]
CMD ["serve", "-c", "/etc/switchyard/compose.toml"]
