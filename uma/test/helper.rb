# frozen_string_literal: true

require "minitest/autorun"
require "socket"
require "net/http"
require "timeout"
require "tmpdir"

# Starts bin/uma as a child process and talks HTTP to it with real clients.
module UmaTestHelper
  ROOT = File.expand_path("../..", __dir__)
  UMA = File.join(ROOT, "bin/uma")
  APP = File.join(__dir__, "apps/test.ru")

  def free_port
    s = TCPServer.new("127.0.0.1", 0)
    s.addr[1]
  ensure
    s&.close
  end

  # Starts the server; returns [pid, port, output reader]. Waits for the
  # startup line.
  def start_uma(*args, app: APP, env: {}, workers: nil, port: free_port, wait: true)
    r, w = IO.pipe
    cmd = [UMA, "-b", "127.0.0.1", "-p", port.to_s]
    cmd += ["-w", workers.to_s] if workers
    cmd += [*args, app]
    pid = Process.spawn(env, *cmd, out: w, err: w, pgroup: true)
    w.close
    @uma_pids ||= []
    @uma_pids << pid
    line = nil
    Timeout.timeout(60) { line = r.gets } if wait
    raise "uma did not start: #{r.read}" if wait && !line&.include?("listening")

    [pid, port, r, line]
  end

  def stop_uma(pid, signal = :TERM)
    Process.kill(signal, pid)
    Timeout.timeout(30) { Process.wait2(pid)[1] }
  end

  def teardown
    (@uma_pids || []).each do |pid|
      [-pid, pid].each do |target|
        Process.kill(:KILL, target)
      rescue Errno::ESRCH, Errno::EPERM
        nil
      end
    end
    (@uma_pids || []).each do |pid|
      Process.wait(pid)
    rescue Errno::ECHILD
      nil
    end
    super
  end

  # Sends raw bytes, returns everything the server sent until it closed
  # (or the timeout).
  def raw(port, data, timeout: 5)
    s = TCPSocket.new("127.0.0.1", port)
    s.write(data)
    s.close_write rescue nil
    out = +""
    Timeout.timeout(timeout) { out << s.read }
    out
  ensure
    s&.close
  end

  # Reads one HTTP response (head and content-length body) from a socket.
  def read_response(sock)
    head = +""
    head << sock.readpartial(1) until head.end_with?("\r\n\r\n")
    length = head[/content-length: (\d+)/i, 1].to_i
    body = length.positive? ? sock.read(length) : ""
    [head, body]
  end

  def get(port, path, headers = {})
    Net::HTTP.start("127.0.0.1", port, read_timeout: 10) { |http| http.get(path, headers) }
  end
end
