# frozen_string_literal: true

require "cgi"
require "erb"
require "json"
require "time"
require_relative "db"

module TFB
  # The six TechEmpower test types as one Rack app.
  class App
    WORLD_ROWS = 10_000
    MAX_QUERIES = 500
    ADDED_FORTUNE = "Additional fortune added at request time."
    JSON_TYPE = "application/json"
    TEXT_TYPE = "text/plain"
    HTML_TYPE = "text/html; charset=utf-8"
    PLAINTEXT = "Hello, World!"
    INT_ARRAY = PG::TextEncoder::Array.new(elements_type: PG::TextEncoder::Integer.new)
    NOT_FOUND = [404, { "content-type" => TEXT_TYPE, "content-length" => "0" }.freeze, [].freeze].freeze

    FORTUNES = ERB.new(File.read(File.join(__dir__, "fortunes.html.erb")))
    FORTUNES.def_method(self, "render_fortunes(fortunes)")

    # server: the Server header's value. date: whether the app writes the
    # Date header itself (Uma writes one; Puma and Falcon do not).
    def initialize(server: "uma", date: false)
      @server = server
      @date = date
    end

    def call(env)
      case env["PATH_INFO"]
      when "/plaintext" then respond(TEXT_TYPE, PLAINTEXT.dup)
      when "/json" then respond(JSON_TYPE, JSON.generate({ message: PLAINTEXT }))
      when "/db" then respond(JSON_TYPE, JSON.generate(DB.with { |conn| world(conn, random_id) }))
      when "/queries" then respond(JSON_TYPE, JSON.generate(queries(env)))
      when "/fortunes" then respond(HTML_TYPE, fortunes)
      when "/updates" then respond(JSON_TYPE, JSON.generate(updates(env)))
      else NOT_FOUND
      end
    end

    # The queries parameter as TFB asks: an integer clamped to 1..500,
    # anything that is not one (missing, empty, "foo", "-3") counts as 1.
    def self.query_count(query_string)
      value = nil
      query_string&.split("&") do |pair|
        name, v = pair.split("=", 2)
        value = v if name == "queries"
      end
      return 1 unless value&.match?(/\A\d+\z/)

      value.to_i.clamp(1, MAX_QUERIES)
    end

    private

    def respond(type, body)
      headers = { "content-type" => type, "content-length" => body.bytesize.to_s, "server" => @server }
      headers["date"] = Time.now.httpdate if @date
      [200, headers, [body]]
    end

    def random_id = rand(1..WORLD_ROWS)

    def world(conn, id)
      row = conn.exec_prepared("world", [id]).first
      { id: row["id"].to_i, randomNumber: row["randomnumber"].to_i }
    end

    def queries(env)
      count = self.class.query_count(env["QUERY_STRING"])
      DB.with { |conn| Array.new(count) { world(conn, random_id) } }
    end

    def fortunes
      rows = DB.with { |conn| conn.exec_prepared("fortunes").map { |r| [r["id"].to_i, r["message"]] } }
      rows << [0, ADDED_FORTUNE]
      rows.sort_by! { |_, message| message }
      render_fortunes(rows)
    end

    # Reads each world with its own query, gives each a new random number,
    # writes them all in one statement.
    def updates(env)
      count = self.class.query_count(env["QUERY_STRING"])
      DB.with do |conn|
        worlds = Array.new(count) { world(conn, random_id) }
        numbers = {}
        worlds.each { |w| w[:randomNumber] = numbers[w[:id]] ||= new_number(w[:randomNumber]) }
        ids = numbers.keys.sort
        conn.exec_prepared("update_worlds", [INT_ARRAY.encode(ids), INT_ARRAY.encode(ids.map { numbers[it] })])
        worlds
      end
    end

    # A random number other than the old one, so every update changes the row.
    def new_number(old)
      n = rand(1..WORLD_ROWS - 1)
      n >= old ? n + 1 : n
    end
  end
end
