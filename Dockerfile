# syntax=docker/dockerfile:1
# The gateway and the business-software simulators in one image (docker-compose.yml runs
# each as its own service). Two stages: the build (the Rust toolchain, ~2 GB) is thrown
# away; the runtime image holds the binaries, the shipped mappings, the official schemas and xmllint (for the
# Cityweb and PES simulators), and runs as the unprivileged user `aiguillage` (uid 10001).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aiguillage --bin aiguillage \
 && cargo build --release --locked -p aiguillage-tests --bin cityweb-sim --bin pes-sim --bin ads-sim \
 && install -D -m 0755 target/release/aiguillage /out/aiguillage \
 && install -D -m 0755 target/release/cityweb-sim /out/cityweb-sim \
 && install -D -m 0755 target/release/pes-sim /out/pes-sim \
 && install -D -m 0755 target/release/ads-sim /out/ads-sim

FROM debian:bookworm-slim AS runtime
# The import directories exist in the image with the right owner, so that the named
# volumes mounted on them start writable by the gateway and the simulators.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libxml2-utils \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /srv/aiguillage --shell /usr/sbin/nologin aiguillage \
 && install -d -o aiguillage -g aiguillage /srv/aiguillage \
      /srv/aiguillage/spool/cityweb-import /srv/aiguillage/spool/cityweb-out \
      /srv/aiguillage/spool/pes-import /srv/aiguillage/spool/ads-depots
COPY --from=build /out/ /usr/local/bin/
COPY mappings /srv/aiguillage/mappings
# The official schemas the simulators validate against (the repository's schemas/).
COPY schemas /usr/share/aiguillage/schemas
USER aiguillage
WORKDIR /srv/aiguillage
EXPOSE 9464
ENTRYPOINT ["aiguillage"]
CMD ["run", "--config", "/srv/aiguillage/gateway.toml"]
