# frozen_string_literal: true

# Creates and fills the World and Fortune tables as TechEmpower's database
# images have them: 10,000 worlds with random numbers in 1..10,000 and the
# twelve fortunes. Run as a script it uses libpq's settings (PGHOST,
# PGDATABASE, PGUSER...):
#
#   PGHOST=/path/to/socket/dir ruby benchmark/techempower/setup_db.rb
require "pg"

module TFB
  module Setup
    FORTUNES = [
      "fortune: No such file or directory",
      "A computer scientist is someone who fixes things that aren't broken.",
      "After enough decimal places, nobody gives a damn.",
      "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
      "A computer program does what you tell it to do, not what you want it to do.",
      "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen",
      "Any program that runs right is obsolete.",
      "A list is only as strong as its weakest link. — Donald Knuth",
      "Feature: A bug with seniority.",
      "Computers make very fast, very accurate mistakes.",
      "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
      "フレームワークのベンチマーク"
    ].freeze

    # Drops and recreates both tables on the connection.
    def self.run(conn)
      conn.exec("SET client_min_messages = warning") # no notice for tables that are not there yet
      conn.transaction do
        conn.exec("DROP TABLE IF EXISTS world, fortune")
        conn.exec("CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0)")
        conn.exec("INSERT INTO world (id, randomnumber) " \
                  "SELECT i, 1 + floor(random() * 10000)::int FROM generate_series(1, 10000) AS i")
        conn.exec("CREATE TABLE fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL)")
        FORTUNES.each.with_index(1) do |message, id|
          conn.exec_params("INSERT INTO fortune (id, message) VALUES ($1, $2)", [id, message])
        end
      end
      conn.exec("VACUUM ANALYZE world")
      conn.exec("VACUUM ANALYZE fortune")
    end
  end
end

if $PROGRAM_NAME == __FILE__
  conn = PG.connect
  TFB::Setup.run(conn)
  conn.close
  puts "world: 10000 rows, fortune: #{TFB::Setup::FORTUNES.size} rows"
end
