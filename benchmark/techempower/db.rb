# frozen_string_literal: true

require "pg"
require_relative "pool"

module TFB
  # The database side of the app: one pool per process (made after fork, on
  # first use), every statement prepared once per connection.
  module DB
    STATEMENTS = {
      "world" => "SELECT id, randomnumber FROM world WHERE id = $1",
      "fortunes" => "SELECT id, message FROM fortune",
      # One statement for a whole /updates request (TFB allows batched
      # updates; the reads stay one query per row). Rows go in id order so
      # that concurrent requests lock them in the same order.
      "update_worlds" => "UPDATE world SET randomnumber = v.rn " \
                         "FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS rn) AS v " \
                         "WHERE world.id = v.id"
    }.freeze

    # Connections per process (TFB_DB_POOL, default 16).
    def self.pool_size = Integer(ENV.fetch("TFB_DB_POOL", "16"))

    # Connects with libpq's own settings (PGHOST, PGDATABASE, PGUSER,
    # PGPASSWORD...), and prepares the statements.
    def self.connect
      conn = PG.connect
      STATEMENTS.each { |name, sql| conn.prepare(name, sql) }
      conn
    end

    def self.pool
      if @pid != Process.pid
        @pid = Process.pid
        @pool = Pool.new(pool_size) { connect }
      end
      @pool
    end

    def self.with(&) = pool.with(&)
  end
end
