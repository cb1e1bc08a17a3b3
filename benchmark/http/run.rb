# frozen_string_literal: true

# `bin/bench http`: hello world through wrk on loopback. Uma against Puma
# and Falcon at 1 and 2 processes, with and without YJIT, keep-alive at 10
# and 100 connections and pipelined at depth 16, with nginx serving a fixed
# body as the ceiling. With one server process the server runs on CPU 0 and
# wrk on CPU 1 (taskset). Every figure of a table comes from the same run.
#
#   UM_BENCH_SCALE   scales the 5 s per measurement (minimum 1 s)
#   UM_BENCH_OUT     directory for results.md and results.json
#   UM_BENCH_HTTP_SERVERS=uma,falcon   only these servers

require "erb"
require "fileutils"
require "json"
require "socket"
require "tmpdir"

module HTTPBench
  ROOT = File.expand_path("../..", __dir__)
  APP = File.join(__dir__, "hello.ru")
  PIPELINE = File.join(__dir__, "pipeline.lua")
  # Debian installs it outside a normal user's PATH.
  NGINX = File.executable?("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx"
  LOADS = [
    { name: "c10", connections: 10, script: nil },
    { name: "c100", connections: 100, script: nil },
    { name: "pipelined", connections: 10, script: PIPELINE }
  ].freeze

  module_function

  def duration
    scale = Float(ENV.fetch("UM_BENCH_SCALE", "1"))
    [(5 * scale).round, 1].max
  end

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  # Writes NAME.json and NAME.md to UM_BENCH_OUT (default benchmark/report),
  # prints the table, and returns the directory.
  def save_report(name, data, md)
    dir = ENV.fetch("UM_BENCH_OUT", File.join(ROOT, "benchmark/report"))
    FileUtils.mkdir_p(dir)
    File.write(File.join(dir, "#{name}.json"), JSON.pretty_generate(data))
    File.write(File.join(dir, "#{name}.md"), md)
    puts md
    dir
  end

  # The servers as [label, command builder, ruby?] entries.
  def servers
    all = {
      "uma" => ->(port, n) { [File.join(ROOT, "bin/uma"), "-b", "127.0.0.1", "-p", port.to_s, "-w", n.to_s, APP] },
      "puma" => lambda do |port, n|
        cmd = ["bundle", "exec", "puma", "-q", "-e", "production", "-b", "tcp://127.0.0.1:#{port}"]
        cmd += ["-w", n.to_s] if n > 1
        cmd + [APP]
      end,
      "falcon" => lambda do |port, n|
        ["bundle", "exec", "falcon", "serve", "--bind", "http://127.0.0.1:#{port}", "--count", n.to_s, "--forked", "-c", APP]
      end
    }
    only = ENV["UM_BENCH_HTTP_SERVERS"]&.split(",")
    only ? all.slice(*only) : all
  end

  def wait_for_port(port, pid, timeout: 30)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      raise "server exited before listening" if Process.waitpid(pid, Process::WNOHANG)
      begin
        TCPSocket.new("127.0.0.1", port).close
        return
      rescue Errno::ECONNREFUSED
        raise "server not listening after #{timeout} s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        sleep 0.1
      end
    end
  end

  def start(cmd, processes, env: {})
    pinned = processes == 1 ? ["taskset", "-c", "0"] : []
    log = File.open(File.join(Dir.tmpdir, "uma-bench-http.log"), "a")
    Process.spawn(env, *pinned, *cmd, out: log, err: log, pgroup: true, chdir: __dir__)
  ensure
    log&.close
  end

  def stop(pid)
    Process.kill(:TERM, -pid)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
    until Process.waitpid(pid, Process::WNOHANG)
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        Process.kill(:KILL, -pid)
        Process.waitpid(pid)
        break
      end
      sleep 0.05
    end
    begin
      Process.kill(:KILL, -pid) # whatever of the group is left
    rescue Errno::ESRCH
      nil
    end
  end

  # Runs wrk once; returns requests per second (nil when wrk saw errors
  # on every request or failed).
  def wrk(port, load, processes)
    pinned = processes == 1 ? ["taskset", "-c", "1"] : []
    cmd = [*pinned, "wrk", "-t1", "-c#{load[:connections]}", "-d#{duration}s"]
    cmd += ["-s", load[:script]] if load[:script]
    cmd << "http://127.0.0.1:#{port}/"
    out = IO.popen(cmd, err: [:child, :out], &:read)
    rate = out[/Requests\/sec:\s+([\d.]+)/, 1]
    errors = out[/Non-2xx or 3xx responses: (\d+)/, 1].to_i + out[/Socket errors:.*timeout (\d+)/, 1].to_i
    { rps: rate && Float(rate), errors: errors }
  end

  def measure(label, processes, cmd, env: {}, port: free_port)
    cmd = cmd.call(port, processes) if cmd.respond_to?(:call)
    pid = start(cmd, processes, env: env)
    wait_for_port(port, pid)
    wrk(port, LOADS.first, processes) # warm-up (YJIT compiles, caches fill)
    LOADS.to_h { |load| [load[:name], wrk(port, load, processes)] }
  rescue => e
    warn "#{label}: #{e.message}"
    nil
  ensure
    stop(pid) if pid
  end

  def nginx(processes)
    dir = Dir.mktmpdir("uma-bench-nginx")
    port = free_port
    conf = File.join(dir, "nginx.conf")
    File.write(conf, ERB.new(File.read(File.join(__dir__, "nginx.conf.erb"))).result_with_hash(processes: processes, dir: dir, port: port))
    measure("nginx", processes, [NGINX, "-c", conf, "-p", dir], port: port)
  ensure
    FileUtils.rm_rf(dir) if dir
  end

  def run
    rows = []
    [1, 2].each do |processes|
      servers.each do |name, cmd|
        [false, true].each do |yjit|
          env = { "RUBYOPT" => (yjit ? "--yjit" : "--disable-yjit") }
          label = "#{name}#{"+yjit" if yjit}"
          rows << { server: label, processes: processes, results: measure(label, processes, cmd, env: env) }
          $stderr.puts "http: #{label} x#{processes} done"
        end
      end
      rows << { server: "nginx", processes: processes, results: nginx(processes) }
    end
    rows
  end

  def rate(rows, server, processes, load)
    row = rows.find { |r| r[:server] == server && r[:processes] == processes }
    row && row[:results] && row[:results][load] && row[:results][load][:rps]
  end

  def ratio(a, b)
    a && b && b.positive? ? format("%.2fx", a / b) : "-"
  end

  def table(rows)
    out = +"# bin/bench http: hello world, wrk on loopback (#{duration} s per cell)\n\n"
    out << "| server | processes | " << LOADS.map { |l| "#{l[:name]} req/s" }.join(" | ") << " | errors |\n"
    out << "|---|---|" << LOADS.map { "---" }.join("|") << "|---|\n"
    rows.each do |row|
      cells = LOADS.map do |l|
        r = row[:results]&.dig(l[:name], :rps)
        r ? format("%.0f", r) : "failed"
      end
      errors = row[:results] ? row[:results].values.sum { |v| v[:errors] } : "-"
      out << "| #{row[:server]} | #{row[:processes]} | #{cells.join(" | ")} | #{errors} |\n"
    end
    out << "\n## Ratios (same run)\n\n| ratio | " << LOADS.map { |l| l[:name] }.join(" | ") << " |\n"
    out << "|---|" << LOADS.map { "---" }.join("|") << "|\n"
    [
      ["uma+yjit / falcon+yjit (1 process)", ["uma+yjit", 1], ["falcon+yjit", 1]],
      ["uma+yjit / puma (1 process)", ["uma+yjit", 1], ["puma", 1]],
      ["uma+yjit / nginx (1 process)", ["uma+yjit", 1], ["nginx", 1]],
      ["uma+yjit 2 processes / 1 process", ["uma+yjit", 2], ["uma+yjit", 1]]
    ].each do |title, (a, ap), (b, bp)|
      out << "| #{title} | " << LOADS.map { |l| ratio(rate(rows, a, ap, l[:name]), rate(rows, b, bp, l[:name])) }.join(" | ") << " |\n"
    end
    out
  end
end

if $PROGRAM_NAME == __FILE__
  rows = HTTPBench.run
  HTTPBench.save_report("http", rows, HTTPBench.table(rows))
  # A smoke run must at least have measured every server once.
  failed = rows.select { |r| r[:results].nil? }
  abort "http: no figures for #{failed.map { |r| "#{r[:server]} x#{r[:processes]}" }.join(", ")}" unless failed.empty?
end
