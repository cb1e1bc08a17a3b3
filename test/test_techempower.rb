# frozen_string_literal: true

require "minitest/autorun"
require "socket"
require "timeout"
require_relative "support/postgres"
require_relative "../benchmark/techempower/setup_db"
require_relative "../benchmark/techempower/app"
require_relative "../benchmark/techempower/verifier"

# The TechEmpower app (benchmark/techempower) served by Uma against the
# test PostgreSQL, checked route by route by the verifier; and the verifier
# itself on broken responses, so that it cannot pass by not looking.
class TechEmpowerTest < Minitest::Test
  ROOT = File.expand_path("..", __dir__)
  V = TFB::Verifier
  OK_JSON = { "content-type" => "application/json", "server" => "uma", "date" => "Mon, 07 Dec 2026 21:47:15 GMT" }.freeze

  def test_verifier_passes_every_route_served_by_uma
    db = PG.connect(**TestPostgres.connect_params)
    TFB::Setup.run(db)
    with_uma(db) do |url|
      problems = V.new(url, db).run
      assert_equal V::ROUTES, problems.keys
      problems.each { |route, list| assert_empty list, "#{route} failed the verifier" }
    end
  ensure
    db&.close
  end

  def test_query_count_is_clamped_and_strict
    count = ->(qs) { TFB::App.query_count(qs) }
    assert_equal 1, count.(nil)
    assert_equal 1, count.("")
    assert_equal 1, count.("queries=")
    assert_equal 1, count.("queries=foo")
    assert_equal 1, count.("queries=0")
    assert_equal 1, count.("queries=-3")
    assert_equal 1, count.("queries=2x")
    assert_equal 1, count.("queries=1e3")
    assert_equal 7, count.("queries=7")
    assert_equal 20, count.("a=1&queries=20")
    assert_equal 500, count.("queries=501")
    assert_equal 500, count.("queries=99999999999999999999999")
  end

  def test_verifier_fails_missing_headers_and_wrong_lengths
    good = response(OK_JSON, '{"message":"Hello, World!"}')
    assert_empty V.check_json(good)
    assert_includes V.check_json(without(good, "server")), "no server header"
    assert_includes V.check_json(without(good, "date")), "no date header"
    assert_includes V.check_json(without(good, "content-length")), "neither content-length nor transfer-encoding"
    refute_empty V.check_json(with(good, "content-length" => "26"))
    refute_empty V.check_json(with(good, "content-type" => "text/html"))
    refute_empty V.check_json(with(good, "date" => "2026-12-07 21:47:15"))
    refute_empty V.check_json(response(OK_JSON, '{"message":"Hello, World"}'))
    refute_empty V.check_json(response(OK_JSON, '{"message":"Hello, World!","x":1}'))
    refute_empty V.check_json(response(OK_JSON, "not json"))
    refute_empty V.check_date_changed(good, good)
  end

  def test_verifier_fails_wrong_worlds
    two = '[{"id":1,"randomNumber":2},{"id":3,"randomNumber":4}]'
    assert_empty V.check_worlds(response(OK_JSON, two), 2)
    refute_empty V.check_worlds(response(OK_JSON, two), 1) # queries=0 must give one row
    refute_empty V.check_worlds(response(OK_JSON, '{"id":1,"randomNumber":2}'), 1) # an object, not an array
    refute_empty V.check_worlds(response(OK_JSON, '[{"id":1,"randomnumber":2}]'), 1)
    refute_empty V.check_worlds(response(OK_JSON, '[{"id":10001,"randomNumber":2}]'), 1)
    refute_empty V.check_worlds(response(OK_JSON, '[{"id":"1","randomNumber":2}]'), 1)
    refute_empty V.check_db(response(OK_JSON, "[]"))
  end

  def test_verifier_fails_unescaped_or_unsorted_fortunes
    stored = TFB::Setup::FORTUNES.each.with_index(1).map { |m, id| [id, m] }
    html = OK_JSON.merge("content-type" => "text/html; charset=utf-8")
    page = ->(rows, escape: true) { TFB::App.new.send(:render_fortunes, rows).then { escape ? it : CGI.unescapeHTML(it) } }
    sorted = (stored + [[0, TFB::App::ADDED_FORTUNE]]).sort_by { _2 }
    assert_empty V.check_fortunes(response(html, page.(sorted)), stored)
    refute_empty V.check_fortunes(response(html, page.(sorted, escape: false)), stored)
    refute_empty V.check_fortunes(response(html, page.(sorted.reverse)), stored)
    refute_empty V.check_fortunes(response(html, page.(stored.sort_by { _2 })), stored) # no added row
    refute_empty V.check_fortunes(response(html.merge("content-type" => "text/html"), page.(sorted)), stored)
  end

  def test_verifier_fails_updates_that_were_not_written
    before = { 1 => 10, 2 => 20 }
    res = response(OK_JSON, '[{"id":1,"randomNumber":11},{"id":2,"randomNumber":21}]')
    assert_empty V.check_updates_persisted(before, { 1 => 11, 2 => 21 }, res)
    refute_empty V.check_updates_persisted(before, before, res)
    refute_empty V.check_updates_persisted(before, { 1 => 11, 2 => 20 }, res)
  end

  private

  def response(headers, body)
    V::Response.new(200, headers.merge("content-length" => body.bytesize.to_s), body.b)
  end

  def without(res, name) = V::Response.new(res.status, res.headers.except(name), res.body)
  def with(res, fields) = V::Response.new(res.status, res.headers.merge(fields), res.body)

  # Uma with two workers on the app, the database given to it through
  # libpq's variables.
  def with_uma(db)
    port = TCPServer.open("127.0.0.1", 0) { it.addr[1] }
    env = { "PGHOST" => db.host, "PGDATABASE" => db.db, "PGUSER" => db.user, "TFB_DB_POOL" => "4" }
    r, w = IO.pipe
    pid = Process.spawn(env, File.join(ROOT, "bin/uma"), "-b", "127.0.0.1", "-p", port.to_s, "-w", "2",
                        File.join(ROOT, "benchmark/techempower/config.ru"), out: w, err: w, pgroup: true)
    w.close
    line = Timeout.timeout(60) { r.gets }
    assert_includes line.to_s, "listening", "uma did not start: #{line}#{r.read_nonblock(10_000, exception: false)}"
    yield "http://127.0.0.1:#{port}"
  ensure
    if pid
      Process.kill(:TERM, pid)
      Timeout.timeout(30) { Process.wait(pid) }
    end
    r&.close
  end
end
