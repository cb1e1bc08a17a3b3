# frozen_string_literal: true

require_relative "helper"

# One worker serving the test app (Rack::Lint on) to Net::HTTP, curl and
# raw sockets.
class TestUmaServer < Minitest::Test
  include UmaTestHelper

  def setup
    @dir = Dir.mktmpdir("uma-test")
    @file = File.join(@dir, "static.txt")
    File.write(@file, "static file contents\n" * 1000)
    @big_file = File.join(@dir, "big.bin")
    File.binwrite(@big_file, Random.new(1).bytes(3_000_001))
    @finished = File.join(@dir, "finished.log")
    @pid, @port, @out, @line = start_uma(env: { "UMA_TEST_FILE" => @file, "UMA_TEST_BIG_FILE" => @big_file, "UMA_TEST_FINISHED" => @finished })
  end

  def teardown
    super
    FileUtils.rm_rf(@dir)
  end

  def test_startup_line
    assert_equal "uma 0.1.0 listening on http://127.0.0.1:#{@port}, 1 worker\n", @line
  end

  def test_get_and_env
    res = get(@port, "/env?a=1&b=2", "X-Test" => "yes")
    assert_equal "200", res.code
    refute_nil res["date"]
    fields = res.body.lines.to_h { |l| l.chomp.split("=", 2) }
    assert_equal "GET", fields["REQUEST_METHOD"]
    assert_equal "/env", fields["PATH_INFO"]
    assert_equal "a=1&b=2", fields["QUERY_STRING"]
    assert_equal "127.0.0.1", fields["SERVER_NAME"]
    assert_equal @port.to_s, fields["SERVER_PORT"]
    assert_equal "HTTP/1.1", fields["SERVER_PROTOCOL"]
    assert_equal "yes", fields["HTTP_X_TEST"]
    assert_equal "127.0.0.1", fields["REMOTE_ADDR"]
  end

  def test_post_content_length_and_chunked
    body = "x" * 200_000
    res = Net::HTTP.start("127.0.0.1", @port) { |h| h.post("/echo", body, "content-type" => "text/plain") }
    assert_equal body.bytesize, res.body.bytesize
    assert_equal "POST", res["x-method"]

    out = raw(@port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" \
                     "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n")
    assert_match(/\r\n\r\nhello world\z/, out)
    res = Net::HTTP.start("127.0.0.1", @port) { |h| h.post("/lines", "a\nb\nc\n") }
    assert_equal "3", res.body
  end

  def test_keep_alive_and_pipelining_in_order
    s = TCPSocket.new("127.0.0.1", @port)
    s.write("GET /env?1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" \
            "GET /env?3 HTTP/1.1\r\nHost: a\r\n\r\n")
    _, b1 = read_response(s)
    _, b2 = read_response(s)
    _, b3 = read_response(s)
    assert_includes b1, "QUERY_STRING=1"
    assert_equal "abc", b2
    assert_includes b3, "QUERY_STRING=3"
    s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_equal "Hello, World!", read_response(s)[1]
  ensure
    s&.close
  end

  # Responses held back while the next pipelined request is buffered all go
  # out before the server waits for the rest of a partial one.
  def test_pipelined_responses_are_sent_before_waiting_for_more
    s = TCPSocket.new("127.0.0.1", @port)
    s.write("GET /env?1 HTTP/1.1\r\nHost: a\r\n\r\n" * 3 + "GET /env?4 HTTP/1.1\r\nHo")
    3.times { assert_includes Timeout.timeout(5) { read_response(s) }[1], "QUERY_STRING=1" }
    s.write("st: a\r\n\r\n")
    assert_includes Timeout.timeout(5) { read_response(s) }[1], "QUERY_STRING=4"
  ensure
    s&.close
  end

  def test_head_204_304_have_no_body
    out = raw(@port, "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert_match(/content-length: 13\r\n/, out)
    assert out.end_with?("\r\n\r\n")
    %w[/nocontent /notmodified].each do |path|
      out = raw(@port, "GET #{path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
      refute_match(/content-length|transfer-encoding/i, out)
      assert out.end_with?("\r\n\r\n"), out
    end
  end

  def test_streamed_each_body_is_chunked_and_closed
    s = TCPSocket.new("127.0.0.1", @port)
    s.write("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
    out = +""
    Timeout.timeout(5) { out << s.readpartial(4096) until out.end_with?("0\r\n\r\n") }
    s.close
    assert_match(/transfer-encoding: chunked/, out)
    assert out.end_with?("3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n"), out
    # Without keep-alive (or on HTTP/1.0) the end of the body is the close.
    out10 = raw(@port, "GET /stream HTTP/1.0\r\n\r\n")
    assert out10.end_with?("connection: close\r\n\r\nonetwothree"), out10
    log = +""
    Timeout.timeout(5) { log << @out.readpartial(4096) until log.scan("body closed").size >= 2 }
    # curl without the sanitizer runtime bin/test may preload (curl
    # deadlocks in it).
    curl = IO.popen({ "LD_PRELOAD" => nil }, ["curl", "-s", "-m", "10", "http://127.0.0.1:#{@port}/stream"], &:read)
    assert_equal "onetwothree", curl
  end

  def test_to_path_body
    res = get(@port, "/file")
    assert_equal File.read(@file), res.body
    assert_equal File.size(@file).to_s, res["content-length"]
  end

  # A large file goes out through a pipe with splice, on a keep-alive
  # connection that then serves the next request.
  def test_large_to_path_body_and_keep_alive
    Net::HTTP.start("127.0.0.1", @port, read_timeout: 10) do |http|
      2.times do
        res = http.get("/big_file")
        assert_equal File.size(@big_file).to_s, res["content-length"]
        assert File.binread(@big_file) == res.body, "the file's bytes"
      end
      assert_equal "", http.head("/big_file").body.to_s
      assert_equal "Hello, World!", http.get("/").body
    end
  end

  def test_full_and_partial_hijack
    assert_equal "hijacked", raw(@port, "GET /hijack HTTP/1.1\r\nHost: a\r\n\r\n").split("\r\n\r\n", 2)[1]
    out = raw(@port, "GET /partial HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_match(/\AHTTP\/1.1 200 OK\r\n/, out)
    assert out.end_with?("\r\n\r\npartial!"), out
  end

  def test_callable_body
    out = raw(@port, "GET /call HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.end_with?("\r\n\r\nab"), out
  end

  def test_early_hints
    out = raw(@port, "GET /hints HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert_match(/\AHTTP\/1.1 103 Early Hints\r\nlink: <\/style.css>; rel=preload\r\n\r\nHTTP\/1.1 200 OK\r\n/, out)
    assert out.end_with?("after hints")
  end

  def test_response_finished_in_reverse_order
    get(@port, "/finished")
    Timeout.timeout(5) { sleep 0.01 until File.exist?(@finished) && File.read(@finished).lines.size == 2 }
    assert_equal "second 200\nfirst\n", File.read(@finished)
  end

  def test_repeated_header_values
    out = raw(@port, "GET /multi HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert_match(/set-cookie: a=1\r\nset-cookie: b=2\r\n/, out)
  end

  def test_bad_header_value_is_500_and_rack_headers_dropped
    out = raw(@port, "GET /raw/badheader HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_match(/\AHTTP\/1.1 500 /, out)
    refute_includes out, "never"
    out = raw(@port, "GET /raw/rackheader HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    refute_includes out, "rack.secret"
    assert_includes out, "x-ok: y"
  end

  def test_app_error_is_500_and_the_worker_goes_on
    res = get(@port, "/raise")
    assert_equal "500", res.code
    assert_equal "200", get(@port, "/").code
    log = +""
    Timeout.timeout(5) { log << @out.readpartial(4096) until log.include?("boom from the app") }
    assert_match(/RuntimeError: boom from the app/, log)
    assert_match(/test\.ru:\d+/, log) # the backtrace
  end

  def test_expect_100_continue
    s = TCPSocket.new("127.0.0.1", @port)
    s.write("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert_equal "HTTP/1.1 100 Continue\r\n\r\n", Timeout.timeout(5) { s.readpartial(100) }
    s.write("data")
    assert_equal "data", read_response(s)[1]
  ensure
    s&.close
  end

  def test_client_disconnect_mid_request_costs_nothing
    5.times do
      s = TCPSocket.new("127.0.0.1", @port)
      s.write("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
      s.close
    end
    assert_equal "200", get(@port, "/").code
  end

  def test_many_concurrent_keep_alive_connections
    socks = Array.new(1000) { TCPSocket.new("127.0.0.1", @port) }
    socks.each { |s| s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n") }
    socks.each { |s| assert_equal "Hello, World!", read_response(s)[1] }
    socks.each { |s| s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n") }
    socks.each { |s| assert_equal "Hello, World!", read_response(s)[1] }
  ensure
    socks&.each(&:close)
  end

  def test_graceful_stop_finishes_a_slow_request
    slow = Thread.new { get(@port, "/slow?1") }
    idle = TCPSocket.new("127.0.0.1", @port)
    sleep 0.3
    Process.kill(:TERM, @pid)
    assert_equal "slow done", slow.value.body
    status = Timeout.timeout(10) { Process.wait2(@pid)[1] }
    assert_equal 0, status.exitstatus
    assert_equal "", Timeout.timeout(5) { idle.read } # the idle connection was closed
  ensure
    idle&.close
  end
end
