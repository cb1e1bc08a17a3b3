# frozen_string_literal: true

# `bin/bench connections`: one server process (Uma, Puma, Falcon) serving
# benchmark/http/hello.ru holds 10,000 idle keep-alive connections, each of
# which has served one request. Measured: the server's memory (Rss and Pss
# from /proc/PID/smaps_rollup, every process of the server summed, and the
# process that holds the connections alone) before and with them, then
# req/s from wrk on 100 more connections while they stay open, against
# req/s without them. Then every idle connection must answer a second
# request: a server that dropped them is reported, not measured.
#
#   UM_BENCH_SCALE              scales the 10,000 connections (minimum 200)
#                               and the 5 s of wrk (minimum 1 s)
#   UM_BENCH_OUT                directory for connections.md and .json
#   UM_BENCH_CONNECTIONS_SERVERS=uma,falcon   only these servers

require "fileutils"
require "json"
require "socket"
require_relative "../http/run"

module ConnBench
  IDLE_TIMEOUT = 300 # seconds; longer than a whole measurement
  BATCH = 200 # connections opened before their responses are read
  REQUEST = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
  PUMA_CONFIG = File.join(__dir__, "puma.rb")

  module_function

  def scale = Float(ENV.fetch("UM_BENCH_SCALE", "1"))
  def count = [(10_000 * scale).round, 200].max

  def servers
    root = HTTPBench::ROOT
    app = HTTPBench::APP
    all = {
      "uma" => lambda do |port|
        [File.join(root, "bin/uma"), "-b", "127.0.0.1", "-p", port.to_s, "-w", "1", "--idle-timeout", IDLE_TIMEOUT.to_s, app]
      end,
      "puma" => ->(port) { ["bundle", "exec", "puma", "-q", "-e", "production", "-C", PUMA_CONFIG, "-b", "tcp://127.0.0.1:#{port}", app] },
      "falcon" => lambda do |port|
        ["bundle", "exec", "falcon", "serve", "--bind", "http://127.0.0.1:#{port}", "--count", "1", "--forked",
         "--timeout", IDLE_TIMEOUT.to_s, "-c", app]
      end
    }
    only = ENV["UM_BENCH_CONNECTIONS_SERVERS"]&.split(",")
    only ? all.slice(*only) : all
  end

  # Both sides need an fd per connection: the soft limit goes up to the hard
  # one here and in the server (Process.spawn's rlimit_nofile).
  def nofile
    _, hard = Process.getrlimit(:NOFILE)
    Process.setrlimit(:NOFILE, hard, hard)
    raise "the fd limit (#{hard}) is too low for #{count} connections" if hard < count + 200

    hard
  end

  # The server's processes: its process group.
  def pids(pgid)
    Dir["/proc/[0-9]*/stat"].filter_map do |path|
      fields = File.read(path).split(") ").last.split
      path[%r{\d+}].to_i if fields[2].to_i == pgid
    rescue Errno::ENOENT, Errno::ESRCH
      nil
    end
  end

  # Rss and Pss in MiB, and the fds a process holds.
  def memory(pid)
    rollup = File.read("/proc/#{pid}/smaps_rollup")
    kb = ->(name) { rollup[/^#{name}:\s+(\d+) kB/, 1].to_i }
    { pid: pid, rss: kb.("Rss") / 1024.0, pss: kb.("Pss") / 1024.0, fds: Dir.children("/proc/#{pid}/fd").size }
  rescue Errno::ENOENT
    nil
  end

  # The group's total, and the process with the most fds (the one holding
  # the connections).
  def snapshot(pgid)
    procs = pids(pgid).filter_map { memory(it) }
    holder = procs.max_by { it[:fds] }
    { rss: procs.sum { it[:rss] }, pss: procs.sum { it[:pss] }, processes: procs.size,
      holder_rss: holder[:rss], holder_pss: holder[:pss], holder_fds: holder[:fds] }
  end

  # Reads one response (head and content-length body); returns its status.
  def read_response(sock)
    buf = +""
    buf << sock.readpartial(4096) until (head_end = buf.index("\r\n\r\n"))
    length = buf[/^content-length: *(\d+)/i, 1].to_i
    buf << sock.readpartial(4096) while buf.bytesize < head_end + 4 + length
    buf[/\AHTTP\/1\.1 (\d+)/, 1].to_i
  end

  # count connections, each having served one request and left open.
  def open_idle(port, count)
    socks = []
    count.times.each_slice(BATCH) do |slice|
      batch = slice.map { TCPSocket.new("127.0.0.1", port) }
      batch.each { it.write(REQUEST) }
      batch.each { |s| raise "status #{read_response(s)}" unless read_response(s) == 200 } # rubocop:disable Style/SoleNestedConditional
      socks.concat(batch)
    end
    socks
  end

  # How many of the connections answer a second request.
  def still_open(socks)
    socks.each_slice(BATCH).sum do |batch|
      alive = batch.select do |s|
        s.write(REQUEST)
        true
      rescue SystemCallError, IOError
        false
      end
      alive.count do |s|
        read_response(s) == 200
      rescue SystemCallError, IOError
        false
      end
    end
  end

  def wrk(port) = HTTPBench.wrk(port, { connections: 100, script: nil }, 2)

  def measure(name, cmd)
    port = HTTPBench.free_port
    limit = nofile
    log = File.open(File.join(Dir.tmpdir, "uma-bench-connections.log"), "a")
    pid = Process.spawn({ "RUBYOPT" => "--yjit" }, *cmd.call(port), out: log, err: log, pgroup: true,
                                                                     rlimit_nofile: [limit, limit], chdir: __dir__)
    HTTPBench.wait_for_port(port, pid)
    wrk(port) # warm-up
    rps_before = wrk(port)
    sleep 1
    before = snapshot(pid)
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    socks = open_idle(port, count)
    open_s = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
    sleep 2
    with = snapshot(pid)
    rps_with = wrk(port)
    after_wrk = snapshot(pid)
    answered = still_open(socks)
    raise "only #{answered} of #{socks.size} idle connections answered a second request" unless answered == socks.size

    { connections: socks.size, open_s: open_s.round(2), before: before, idle: with, after_wrk: after_wrk,
      rps_before: rps_before, rps_with: rps_with,
      kib_per_connection: ((with[:holder_rss] - before[:holder_rss]) * 1024 / socks.size).round(1) }
  rescue => e
    warn "connections: #{name}: #{e.message}"
    nil
  ensure
    socks&.each(&:close)
    HTTPBench.stop(pid) if pid
    log&.close
  end

  def run = servers.to_h { |name, cmd| [name, measure(name, cmd).tap { $stderr.puts "connections: #{name} done" }] }

  def table(results)
    n = results.values.compact.first&.dig(:connections) || count
    out = +"# bin/bench connections: #{n} idle keep-alive connections, one server process\n\n"
    out << "Memory in MiB from /proc/PID/smaps_rollup, of the process holding the connections " \
           "(and of all the server's processes); req/s from wrk, 100 connections, #{HTTPBench.duration} s.\n\n"
    out << "| server | RSS before | RSS idle | PSS idle | all processes RSS / PSS idle | KiB RSS per connection | " \
           "req/s without | req/s with them open | errors |\n|---|---|---|---|---|---|---|---|---|\n"
    results.each do |name, r|
      next out << "| #{name} | failed |||||||\n" unless r

      f = ->(v) { format("%.1f", v) }
      rps = ->(w) { w[:rps] ? format("%.0f", w[:rps]) : "failed" }
      out << "| #{name} | #{f.(r[:before][:holder_rss])} | #{f.(r[:idle][:holder_rss])} | #{f.(r[:idle][:holder_pss])} | " \
             "#{f.(r[:idle][:rss])} / #{f.(r[:idle][:pss])} (#{r[:idle][:processes]}) | #{r[:kib_per_connection]} | " \
             "#{rps.(r[:rps_before])} | #{rps.(r[:rps_with])} | #{r[:rps_before][:errors] + r[:rps_with][:errors]} |\n"
    end
    out
  end
end

if $PROGRAM_NAME == __FILE__
  results = ConnBench.run
  HTTPBench.save_report("connections", results, ConnBench.table(results))
  failed = results.select { |_, r| r.nil? }.keys
  abort "connections: no figures for #{failed.join(", ")}" unless failed.empty?
end
