# The TechEmpower image of Uma. Build context: the root of this repository
# (the gems are built from it):
#
#   docker build -f benchmark/techempower/uma.dockerfile -t tfb-uma .
#
# TFB's database container answers as tfb-database with its usual
# credentials; libpq reads them from the PG* variables.
FROM ruby:3.4-bookworm

RUN apt-get update -yqq && apt-get install -yqq --no-install-recommends liburing-dev libpq-dev && \
    rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN gem build uringmachine.gemspec && gem install --no-document ./uringmachine-*.gem && \
    cd uma && gem build uma.gemspec && gem install --no-document ./uma-*.gem && \
    gem install --no-document pg json

ENV RACK_ENV=production \
    PGHOST=tfb-database PGDATABASE=hello_world PGUSER=benchmarkdbuser PGPASSWORD=benchmarkdbpass \
    TFB_SERVER=uma TFB_DB_POOL=16
WORKDIR /src/benchmark/techempower
EXPOSE 8080
CMD ["sh", "-c", "exec uma -b 0.0.0.0 -p 8080 -w $(nproc) config.ru"]
