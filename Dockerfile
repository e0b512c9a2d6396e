# Multi-stage build: compile in the Rust image, run on slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
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
