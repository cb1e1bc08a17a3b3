# frozen_string_literal: true

require_relative "helper"

# Malformed and smuggling requests over a real socket: the status each gets,
# and that the server then closes the connection (the app never sees them).
class TestUmaStrict < Minitest::Test
  include UmaTestHelper

  CASES = {
    "bad method" => ["G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    "bad version" => ["GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
    "junk version" => ["GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400],
    "bare LF" => ["GET / HTTP/1.1\nHost: a\n\n", 400],
    "no host" => ["GET / HTTP/1.1\r\n\r\n", 400],
    "two hosts" => ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    "space before colon" => ["GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
    "obs-fold" => ["GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400],
    "NUL in value" => ["GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400],
    "bare CR in value" => ["GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400],
    "CL and TE" => ["POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
    "two different CL" => ["POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400],
    "CL not digits" => ["POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400],
    "CL overflow" => ["POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400],
    "TE not chunked last" => ["POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400],
    "TE unknown" => ["POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n", 501],
    "bad chunk size" => ["POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400],
    "chunk size overflow" => ["POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 400],
    "asterisk with GET" => ["GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    "authority form with GET" => ["GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    "long request line" => ["GET /#{"a" * 9000} HTTP/1.1\r\nHost: a\r\n\r\n", 414],
    "too many fields" => ["GET / HTTP/1.1\r\nHost: a\r\n#{"X-A: b\r\n" * 101}\r\n", 431],
    "head too large" => ["GET / HTTP/1.1\r\nHost: a\r\n#{"X-Long: #{"b" * 8000}\r\n" * 9}\r\n", 431]
  }.freeze

  def setup
    @pid, @port, = start_uma("--max-body", "1000")
  end

  CASES.each do |name, (request, status)|
    define_method("test_#{name.tr(" ", "_")}") do
      out = raw(@port, request)
      assert_match(/\AHTTP\/1.1 #{status} /, out, "#{name}: #{out.inspect}")
      assert_match(/connection: close/i, out)
      assert_equal 1, out.scan("HTTP/1.1").size, "one response, then closed"
    end
  end

  def test_smuggled_request_after_a_refusal_is_never_served
    out = raw(@port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /env HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_match(/\AHTTP\/1.1 400 /, out)
    refute_includes out, "REQUEST_METHOD"
  end

  def test_body_over_the_limit_is_413
    out = raw(@port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n#{"a" * 5000}")
    assert_match(/\AHTTP\/1.1 413 /, out)
    out = raw(@port, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n#{"7d0\r\n#{"a" * 2000}\r\n"}0\r\n\r\n")
    assert_match(/\AHTTP\/1.1 413 /, out)
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  # Seconds from now until the server closes the socket without answering.
  def seconds_until_closed(sock)
    t0 = now
    assert_equal "", Timeout.timeout(5) { sock.read }
    now - t0
  end

  # A server with the options, a socket to it; stops the server after.
  def with_connection(*options)
    pid, port, = start_uma(*options)
    sock = TCPSocket.new("127.0.0.1", port)
    yield sock, port
    stop_uma(pid)
  ensure
    sock&.close
  end

  def test_slowloris_head_timeout
    with_connection("--head-timeout", "0.5") do |s|
      s.write("GET / HTTP/1.1\r\nHo")
      assert_operator seconds_until_closed(s), :<, 3
    end
  end

  # The head timeout is for the whole head: a byte every 0.2 s does not
  # stretch it.
  def test_head_timeout_counts_from_the_first_byte
    with_connection("--head-timeout", "1") do |s|
      t0 = now
      closed = false
      "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: #{"a" * 40}".each_char do |c|
        s.write(c)
        sleep 0.2
      rescue Errno::EPIPE, Errno::ECONNRESET
        closed = true
        break
      end
      seconds_until_closed(s) unless closed
      assert_operator now - t0, :<, 4
    end
  end

  def test_idle_keep_alive_timeout
    with_connection("--idle-timeout", "0.5") do |s|
      s.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
      assert_equal "Hello, World!", read_response(s)[1]
      waited = seconds_until_closed(s)
      assert_operator waited, :>=, 0.4
      assert_operator waited, :<, 3
    end
  end

  def test_body_read_timeout
    with_connection("--body-timeout", "0.5") do |s, port|
      s.write("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
      assert_operator seconds_until_closed(s), :<, 3
      # The worker goes on.
      out = raw(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
      assert out.end_with?("\r\n\r\nHello, World!"), out
    end
  end
end
