# frozen_string_literal: true

require "cgi"
require "json"
require "net/http"
require "pg"
require "time"

module TFB
  # Checks a running server against the TechEmpower rules for each test
  # type, the way TFB's own verifier does: required headers, content types,
  # JSON shapes, the queries parameter clamped to 1..500, fortunes escaped
  # and sorted with the added row, updates written to the database.
  #
  #   problems = TFB::Verifier.new("http://127.0.0.1:8080", PG.connect(...)).run
  #   # => { "/json" => [], "/fortunes" => ["..."], ... }, [] when it passes
  class Verifier
    Response = Struct.new(:status, :headers, :body) # headers: lowercase names

    ROUTES = %w[/json /plaintext /db /queries /fortunes /updates].freeze
    # The queries values TFB tries and the row counts it expects.
    QUERY_CASES = { "2" => 2, "0" => 1, "foo" => 1, "501" => 500, "" => 1, "-3" => 1, "20" => 20 }.freeze
    TYPES = {
      json: %r{\Aapplication/json(; ?charset=utf-8)?\z}i,
      html: %r{\Atext/html; ?charset=utf-8\z}i,
      text: %r{\Atext/plain(; ?charset=utf-8)?\z}i
    }.freeze
    DATE = /\A(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT\z/
    ADDED_FORTUNE = "Additional fortune added at request time."
    FORTUNES_PAGE = Regexp.new("\\A" + Regexp.escape("<!DOCTYPE html><html><head><title>Fortunes</title></head><body>" \
                                                     "<table><tr><th>id</th><th>message</th></tr>") +
                               "(?<rows>.*)" + Regexp.escape("</table></body></html>") + "\\s*\\z", Regexp::MULTILINE)
    FORTUNE_ROW = %r{<tr><td>(\d+)</td><td>([^<]*)</td></tr>}

    def initialize(base_url, db)
      @uri = URI(base_url)
      @db = db
    end

    # Problems per route (an empty list: the route passes).
    def run
      problems = ROUTES.to_h { |route| [route, []] }
      first = {}
      ROUTES.each do |route|
        first[route] = get(sample_path(route))
        problems[route].concat(send("check_#{route.delete('/')}"))
      end
      # TFB asks a second time a few seconds later: a Date that did not
      # change is a cached one.
      sleep 1.1
      ROUTES.each do |route|
        problems[route].concat(self.class.check_date_changed(first[route], get(sample_path(route))))
      end
      problems
    end

    def get(path)
      Net::HTTP.start(@uri.host, @uri.port) do |http|
        res = http.get(path)
        headers = res.each_header.to_h { |k, v| [k.downcase, v] }
        Response.new(res.code.to_i, headers, res.body.to_s.b)
      end
    end

    private

    def sample_path(route) = %w[/queries /updates].include?(route) ? "#{route}?queries=2" : route

    def check_json = self.class.check_json(get("/json"))
    def check_plaintext = self.class.check_plaintext(get("/plaintext"))
    def check_db = self.class.check_db(get("/db"))

    def check_queries
      QUERY_CASES.flat_map do |value, rows|
        self.class.check_worlds(get("/queries?queries=#{value}"), rows).map { "queries=#{value}: #{it}" }
      end
    end

    def check_fortunes
      stored = @db.exec("SELECT id, message FROM fortune").map { |r| [r["id"].to_i, r["message"]] }
      self.class.check_fortunes(get("/fortunes"), stored)
    end

    def check_updates
      problems = QUERY_CASES.flat_map do |value, rows|
        self.class.check_worlds(get("/updates?queries=#{value}"), rows).map { "queries=#{value}: #{it}" }
      end
      before = worlds_table
      response = get("/updates?queries=#{QUERY_CASES.values.max}")
      problems + self.class.check_worlds(response, QUERY_CASES.values.max) +
        self.class.check_updates_persisted(before, worlds_table, response)
    end

    def worlds_table = @db.exec("SELECT id, randomnumber FROM world").to_h { |r| [r["id"].to_i, r["randomnumber"].to_i] }

    class << self
      # Server, Date, Content-Type and a length, as TFB requires them.
      def check_headers(res, type)
        problems = []
        problems << "status #{res.status}, not 200" unless res.status == 200
        %w[server date content-type].each { |name| problems << "no #{name} header" unless res.headers[name] }
        if (length = res.headers["content-length"])
          problems << "content-length #{length} but #{res.body.bytesize} bytes" unless length == res.body.bytesize.to_s
        elsif !res.headers["transfer-encoding"]
          problems << "neither content-length nor transfer-encoding"
        end
        date = res.headers["date"]
        problems << "date #{date.inspect} is not an HTTP date" if date && !DATE.match?(date)
        content_type = res.headers["content-type"]
        problems << "content-type #{content_type.inspect} is not #{type}" if content_type && !TYPES.fetch(type).match?(content_type)
        problems
      end

      def check_date_changed(first, second)
        return [] unless first.headers["date"] && first.headers["date"] == second.headers["date"]

        ["date #{first.headers['date']} did not change a second later (cached)"]
      end

      def check_json(res)
        problems = check_headers(res, :json)
        object = parse_json(res.body, problems)
        problems << "body #{res.body.inspect} is not {\"message\":\"Hello, World!\"}" unless object == { "message" => "Hello, World!" }
        problems
      end

      def check_plaintext(res)
        problems = check_headers(res, :text)
        problems << "body #{res.body.inspect} is not \"Hello, World!\"" unless res.body == "Hello, World!"
        problems
      end

      def check_db(res)
        problems = check_headers(res, :json)
        object = parse_json(res.body, problems)
        problems.concat(check_world(object))
      end

      # A JSON array of rows worlds.
      def check_worlds(res, rows)
        problems = check_headers(res, :json)
        list = parse_json(res.body, problems)
        return problems << "not a JSON array: #{res.body[0, 60].inspect}" unless list.is_a?(Array)

        problems << "#{list.size} worlds, not #{rows}" unless list.size == rows
        problems.concat(list.flat_map { check_world(it) }.uniq.first(5))
      end

      # { "id": 1..10000, "randomNumber": 1..10000 }, nothing else.
      def check_world(object)
        return ["not a JSON object: #{object.inspect[0, 60]}"] unless object.is_a?(Hash)
        return ["keys #{object.keys.inspect}, not id and randomNumber"] unless object.keys.sort == %w[id randomNumber]

        object.filter_map do |key, value|
          "#{key} #{value.inspect} is not an integer in 1..10000" unless value.is_a?(Integer) && value.between?(1, 10_000)
        end
      end

      # The page lists every stored fortune and the added one, sorted by
      # message, each message HTML-escaped.
      def check_fortunes(res, stored)
        problems = check_headers(res, :html)
        body = res.body.dup.force_encoding(Encoding::UTF_8)
        return problems << "body is not valid UTF-8" unless body.valid_encoding?

        page = FORTUNES_PAGE.match(body)
        return problems << "not the fortunes page: #{body[0, 80].inspect}" unless page

        rows = page[:rows].scan(FORTUNE_ROW)
        problems << "rows are not all <tr><td>id</td><td>message</td></tr>" unless rows.join.size.positive? &&
                                                                                    page[:rows] == rows.map { |id, m| "<tr><td>#{id}</td><td>#{m}</td></tr>" }.join
        expected = (stored + [[0, ADDED_FORTUNE]]).sort_by { |_, message| message }
        got = rows.map { |id, message| [id.to_i, CGI.unescapeHTML(message)] }
        problems << "fortunes #{got.inspect[0, 200]} are not #{expected.inspect[0, 200]}" unless got == expected
        unescaped = rows.find { |_, message| message.match?(/["'>]|&(?!(amp|lt|gt|quot|#39|#x27|#34);)/) }
        problems << "message not HTML-escaped: #{unescaped[1].inspect}" if unescaped
        problems
      end

      # The worlds the response returned hold the new numbers in the table
      # after it, and at least 90% of them changed (TFB fails below that).
      def check_updates_persisted(before, after, res)
        list = JSON.parse(res.body)
        return ["no worlds returned"] unless list.is_a?(Array) && !list.empty?

        changed = list.count { |w| before[w["id"]] != after[w["id"]] }
        problems = []
        stale = list.reject { |w| after[w["id"]] == w["randomNumber"] }
        problems << "#{stale.size} of #{list.size} returned worlds are not in the table" unless stale.empty?
        problems << "only #{changed} of #{list.size} updated worlds changed in the table" if changed < list.size * 0.9
        problems
      rescue JSON::ParserError
        ["updates body is not JSON"]
      end

      private

      def parse_json(body, problems)
        JSON.parse(body)
      rescue JSON::ParserError => e
        problems << "invalid JSON: #{e.message[0, 80]}"
        nil
      end
    end
  end
end

if $PROGRAM_NAME == __FILE__
  abort "usage: verifier.rb BASE_URL (the database from libpq's PG* variables)" unless ARGV.size == 1
  problems = TFB::Verifier.new(ARGV[0], PG.connect).run
  problems.each { |route, list| puts "#{route}: #{list.empty? ? 'pass' : "FAIL\n  #{list.join("\n  ")}"}" }
  exit(problems.values.all?(&:empty?) ? 0 : 1)
end
