# frozen_string_literal: true

# `bin/bench tfb`: the TechEmpower app (benchmark/techempower) served by
# Uma, Puma and Falcon with the same number of processes, each route driven
# by wrk at the TFB concurrency levels that fit a small machine, plaintext
# pipelined at depth 16, against a throwaway PostgreSQL filled by the
# entry's setup script. Every figure of a table comes from the same run.
#
#   UM_BENCH_SCALE        scales the 5 s per cell (minimum 1 s)
#   UM_BENCH_RUNS         runs of every cell (default 3)
#   UM_BENCH_OUT          directory for tfb.md, tfb.json and tfb.png
#   UM_BENCH_TFB_SERVERS  e.g. uma,falcon: only these servers
#   UM_BENCH_TFB_WORKERS  processes per server (default 2)

require "fileutils"
require "json"
require_relative "../http/run"
require_relative "../harness/chart"
require_relative "../../test/support/postgres"
require_relative "../techempower/setup_db"
require_relative "../techempower/verifier"

module TFBBench
  APP = File.expand_path("../techempower/config.ru", __dir__)
  POOL = 16 # database connections per process (Puma: as many threads)
  # TFB runs 16..512 connections and plaintext at 256..16,384 pipelined;
  # on two CPUs shared with wrk and PostgreSQL the lower levels are the ones
  # that fit.
  CELLS = [
    { route: "plaintext", path: "/plaintext", connections: 256, pipelined: true },
    { route: "json", path: "/json", connections: 16 },
    { route: "json", path: "/json", connections: 256 },
    { route: "db", path: "/db", connections: 16 },
    { route: "db", path: "/db", connections: 256 },
    { route: "queries", path: "/queries?queries=20", connections: 64 },
    { route: "fortunes", path: "/fortunes", connections: 16 },
    { route: "fortunes", path: "/fortunes", connections: 256 },
    { route: "updates", path: "/updates?queries=20", connections: 64 }
  ].freeze

  module_function

  def workers = Integer(ENV.fetch("UM_BENCH_TFB_WORKERS", "2"))

  def servers
    root = HTTPBench::ROOT
    all = {
      "uma" => ->(port, n) { [File.join(root, "bin/uma"), "-b", "127.0.0.1", "-p", port.to_s, "-w", n.to_s, APP] },
      "puma" => lambda do |port, n|
        ["bundle", "exec", "puma", "-q", "-e", "production", "-t", "#{POOL}:#{POOL}", "-w", n.to_s,
         "-b", "tcp://127.0.0.1:#{port}", APP]
      end,
      "falcon" => lambda do |port, n|
        ["bundle", "exec", "falcon", "serve", "--bind", "http://127.0.0.1:#{port}", "--count", n.to_s, "--forked", "-c", APP]
      end
    }
    only = ENV["UM_BENCH_TFB_SERVERS"]&.split(",")
    only ? all.slice(*only) : all
  end

  def label(cell) = "#{cell[:route]} c#{cell[:connections]}#{" pipelined 16" if cell[:pipelined]}"

  def wrk(port, cell)
    cmd = ["wrk", "-t1", "-c#{cell[:connections]}", "-d#{HTTPBench.duration}s", "--timeout", "8s"]
    cmd += ["-s", HTTPBench::PIPELINE] if cell[:pipelined]
    cmd << "http://127.0.0.1:#{port}#{cell[:path]}"
    out = IO.popen(cmd, err: %i[child out], &:read)
    rate = out[%r{Requests/sec:\s+([\d.]+)}, 1]
    socket = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)
    errors = out[/Non-2xx or 3xx responses: (\d+)/, 1].to_i + (socket ? socket.captures.sum(&:to_i) : 0)
    { rps: rate && Float(rate), errors: errors }
  end

  def runs = Integer(ENV.fetch("UM_BENCH_RUNS", "3"))

  # Starts one server, checks it with the verifier (a server that fails the
  # rules is not measured) and warms it up; returns [pid, port].
  def start(name, cmd, db_env, db)
    port = HTTPBench.free_port
    env = db_env.merge("TFB_SERVER" => name, "TFB_DB_POOL" => POOL.to_s, "RUBYOPT" => "--yjit")
    pid = HTTPBench.start(cmd.call(port, workers), workers, env: env)
    HTTPBench.wait_for_port(port, pid)
    failed = TFB::Verifier.new("http://127.0.0.1:#{port}", db).run.reject { |_, problems| problems.empty? }
    raise "fails the verifier: #{failed.inspect}" unless failed.empty?

    CELLS.uniq { it[:path] }.each { |cell| wrk(port, cell.merge(connections: 16)) }
    [pid, port]
  rescue => e
    HTTPBench.stop(pid) if pid
    warn "tfb: #{name}: #{e.message}"
    nil
  end

  # All servers run at once (idle but for the one wrk drives), so that the
  # runs interleave: cell by cell, server by server, run after run, and a
  # slow spell of the shared machine lands on all of them.
  def run
    TestPostgres.start(max_connections: 200) # three servers' pools at once
    params = TestPostgres.connect_params
    db = PG.connect(**params)
    TFB::Setup.run(db)
    db_env = { "PGHOST" => params[:host], "PGDATABASE" => params[:dbname], "PGUSER" => params[:user] }
    started = servers.to_h { |name, cmd| [name, start(name, cmd, db_env, db)] }
    samples = started.keys.to_h { |name| [name, CELLS.to_h { [label(it), []] }] }
    runs.times do |i|
      CELLS.each do |cell|
        started.each { |name, (_, port)| samples[name][label(cell)] << wrk(port, cell) if port }
      end
      $stderr.puts "tfb: run #{i + 1} of #{runs} done"
    end
    { workers: workers, duration: HTTPBench.duration, runs: runs, cells: CELLS.map { label(it) },
      results: started.to_h { |name, s| [name, s && summarize(samples[name])] } }
  ensure
    started&.each_value { |pid, _| HTTPBench.stop(pid) if pid }
    db&.close
  end

  # Per cell: every run's req/s, the median, errors summed.
  def summarize(by_cell)
    by_cell.transform_values do |list|
      rates = list.map { it[:rps] }
      { runs: rates, rps: rates.all? ? median(rates) : nil, errors: list.sum { it[:errors] } }
    end
  end

  def median(list)
    sorted = list.sort
    (sorted[(sorted.size - 1) / 2] + sorted[sorted.size / 2]) / 2.0
  end

  # The median of the run-by-run ratios of two servers in a cell.
  def ratio(report, a, b, cell)
    ra = report[:results][a]&.dig(cell, :runs)
    rb = report[:results][b]&.dig(cell, :runs)
    return "-" unless ra && rb && ra.all? && rb.all?

    format("%.2fx", median(ra.zip(rb).map { |x, y| x / y }))
  end

  def rps(report, server, cell) = report[:results][server]&.dig(cell, :rps)

  def table(report)
    names = report[:results].keys
    out = +"# bin/bench tfb: the TechEmpower routes, #{report[:workers]} processes per server, " \
            "wrk on loopback (#{report[:duration]} s per cell, #{report[:runs]} runs)\n\n" \
            "req/s: the median of the runs; ratios: the median of the run-by-run ratios.\n\n"
    ratios = %w[puma falcon] & names
    out << "| route | " << names.map { "#{it} req/s" }.join(" | ") << " | " << ratios.map { "uma / #{it}" }.join(" | ") << " | errors |\n"
    out << "|---|" << (["---"] * (names.size + ratios.size + 1)).join("|") << "|\n"
    report[:cells].each do |cell|
      cells = names.map { (r = rps(report, it, cell)) ? format("%.0f", r) : "failed" }
      cells += ratios.map { ratio(report, "uma", it, cell) }
      errors = names.sum { report[:results][it]&.dig(cell, :errors).to_i }
      out << "| #{cell} | #{cells.join(" | ")} | #{errors} |\n"
    end
    out
  end

  def chart(report, dir)
    series = report[:results].keys.to_h { |name| [name, report[:cells].map { rps(report, name, it) || 0 }] }
    Bench::Chart.grouped(report[:cells], series, File.join(dir, "tfb.png"),
                         "TechEmpower routes, #{report[:workers]} processes each", "requests/s (log scale)", log: true)
  end
end

if $PROGRAM_NAME == __FILE__
  report = TFBBench.run
  dir = HTTPBench.save_report("tfb", report, TFBBench.table(report))
  TFBBench.chart(report, dir)
  failed = report[:results].select { |_, r| r.nil? }.keys
  abort "tfb: no figures for #{failed.join(", ")}" unless failed.empty?
end
