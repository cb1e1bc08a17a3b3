# frozen_string_literal: true

require_relative "helper"

# The command: startup lines, errors in one line, workers, signals.
class TestUmaCLI < Minitest::Test
  include UmaTestHelper

  def run_uma(*args, env: {})
    out = IO.popen(env, [UMA, *args], err: [:child, :out], &:read)
    [out, $?.exitstatus]
  end

  def test_bad_option_missing_and_broken_config
    out, status = run_uma("--frobnicate")
    assert_equal 1, status
    assert_equal "uma: invalid option: --frobnicate\n", out
    out, status = run_uma("-p", "9", "/nonexistent/config.ru")
    assert_equal [1, "uma: /nonexistent/config.ru not found\n"], [status, out]
    Dir.mktmpdir do |dir|
      broken = File.join(dir, "broken.ru")
      File.write(broken, "run ->(env) { [200, {}, [] \n")
      out, status = run_uma(broken)
      assert_equal 1, status
      assert_equal 1, out.lines.size, out
      assert_match(/\Auma: cannot load .*broken\.ru: SyntaxError/, out)
    end
    out, status = run_uma("-w", "zero", APP)
    assert_equal [1, "uma: --workers must be a number or auto (given \"zero\")\n"], [status, out]
  end

  def test_port_in_use
    blocker = TCPServer.new("127.0.0.1", 0)
    out, status = run_uma("-b", "127.0.0.1", "-p", blocker.addr[1].to_s, APP)
    assert_equal 1, status
    assert_equal "uma: cannot listen on 127.0.0.1:#{blocker.addr[1]}: address already in use\n", out
  ensure
    blocker&.close
  end

  def test_port_from_env_and_version
    out, status = run_uma("-v")
    assert_equal [0, "uma 0.1.0\n"], [status, out]
    port = free_port
    r, w = IO.pipe
    pid = Process.spawn({ "PORT" => port.to_s }, UMA, "-b", "127.0.0.1", APP, out: w, err: w, pgroup: true)
    @uma_pids = [pid]
    w.close
    assert_equal "uma 0.1.0 listening on http://127.0.0.1:#{port}, 1 worker\n", Timeout.timeout(60) { r.gets }
    assert_equal "Hello, World!", get(port, "/").body
  end

  def test_ipv6_and_unix_socket
    Dir.mktmpdir do |dir|
      path = File.join(dir, "uma.sock")
      port = free_port
      r, w = IO.pipe
      pid = Process.spawn(UMA, "-b", "::1", "-b", "unix:#{path}", "-p", port.to_s, APP, out: w, err: w)
      @uma_pids = [pid]
      w.close
      lines = Timeout.timeout(60) { [r.gets, r.gets] }
      assert_equal ["uma 0.1.0 listening on http://[::1]:#{port}, 1 worker\n",
                    "uma 0.1.0 listening on unix:#{path}, 1 worker\n"], lines
      res = Net::HTTP.start("::1", port) { |h| h.get("/") }
      assert_equal "Hello, World!", res.body
      s = UNIXSocket.new(path)
      s.write("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
      assert s.read.end_with?("Hello, World!")
    end
  end

  def test_two_workers_share_the_load_and_a_killed_worker_is_replaced
    pid, port, _out, line = start_uma(workers: 2)
    assert_equal "uma 0.1.0 listening on http://127.0.0.1:#{port}, 2 workers\n", line
    pids = Timeout.timeout(30) do
      seen = []
      seen |= [get(port, "/pid").body] until seen.size == 2
      seen
    end
    Process.kill(:KILL, Integer(pids.first))
    # Under load right after the kill: every request succeeds.
    failures = 0
    200.times { failures += 1 unless get(port, "/").code == "200" }
    assert_equal 0, failures
    now = Timeout.timeout(30) do
      seen = []
      seen |= [get(port, "/pid").body] until seen.size == 2
      seen
    end
    refute_includes now, pids.first
    status = stop_uma(pid)
    assert_equal 0, status.exitstatus
  end

  def test_graceful_stop_of_workers_with_a_request_in_flight
    pid, port, = start_uma(workers: 2)
    slow = Thread.new { get(port, "/slow?1") }
    sleep 0.3
    Process.kill(:TERM, pid)
    assert_equal "slow done", slow.value.body
    assert_equal 0, Timeout.timeout(20) { Process.wait2(pid)[1] }.exitstatus
  end

  # The README's example app.
  def test_example_app
    _pid, port, = start_uma(app: File.join(ROOT, "examples/app.ru"))
    assert_equal "Hello from Uma on io_uring!\n", get(port, "/").body
    res = Net::HTTP.start("127.0.0.1", port) { |http| http.post("/echo", "hello") }
    assert_equal "hello", res.body
    res = get(port, "/stream")
    assert_equal "chunked", res["transfer-encoding"]
    assert_equal "piece 1\npiece 2\npiece 3\n", res.body
    assert_equal "404", get(port, "/nowhere").code
  end

  def test_rackup_handler
    port = free_port
    r, w = IO.pipe
    ruby = RbConfig.ruby
    script = <<~RUBY
      require "rackup"
      require "rackup/handler/uma"
      app = ->(env) { [200, {}, ["from rackup"]] }
      Rackup::Handler.get("uma").run(app, Host: "127.0.0.1", Port: #{port})
    RUBY
    pid = Process.spawn(ruby, "-rbundler/setup", *$LOAD_PATH.flat_map { ["-I", _1] }, "-e", script, out: w, err: w, pgroup: true)
    @uma_pids = [pid]
    w.close
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    body = begin
      get(port, "/").body
    rescue Errno::ECONNREFUSED
      raise "the rackup handler did not listen: #{r.read}" if Process.waitpid(pid, Process::WNOHANG) ||
                                                                 Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.1
      retry
    end
    assert_equal "from rackup", body
  end
end
