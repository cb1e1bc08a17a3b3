# frozen_string_literal: true

require "fileutils"
require "io/nonblock"
require "shellwords"
require "tmpdir"

# A throwaway PostgreSQL server for the tests: a fresh cluster in a temp
# dir, reached only through a Unix socket in that dir, started on first use
# and removed when the test process ends (however it ends: a watchdog
# process stops and removes it once the test process has gone).
#
#   conn = PG.connect(**TestPostgres.connect_params)
#
# PostgreSQL refuses to run as root; as root the server runs as the
# "postgres" system user. When the server cannot be found or started,
# TestPostgres.start raises TestPostgres::Unavailable (once per process).
module TestPostgres
  class Unavailable < StandardError; end

  MAX_CONNECTIONS = 40
  SUPERUSER = "postgres"
  # The server is not ours to check: under UM_SANITIZE the sanitizer
  # runtimes preloaded into the test process must not reach it (postgres
  # hangs with them).
  SERVER_ENV = { "LD_PRELOAD" => nil, "ASAN_OPTIONS" => nil, "UBSAN_OPTIONS" => nil }.freeze

  class << self
    # libpq connection parameters of the running server (started when needed).
    def connect_params
      start
      { host: @dir, dbname: "postgres", user: SUPERUSER }
    end

    # max_connections: the server's limit (the benchmarks need more than the
    # tests); it counts only for the call that starts the server.
    def start(max_connections: MAX_CONNECTIONS)
      raise @failure if @failure
      return if @dir

      bin = bin_dir or raise Unavailable, "PostgreSQL not found (no initdb in /usr/lib/postgresql/*/bin " \
                                          "or on PATH): bin/setup installs the Debian package postgresql"
      @dir = Dir.mktmpdir("um-pg-")
      watch(bin)
      FileUtils.chown(SUPERUSER, nil, @dir) if as_other_user?
      data = File.join(@dir, "data")
      run(File.join(bin, "initdb"), "-D", data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync")
      File.open(File.join(data, "postgresql.conf"), "a") do |conf|
        conf.puts "listen_addresses = ''", "unix_socket_directories = '#{@dir}'",
                  "max_connections = #{max_connections}", "fsync = off", "synchronous_commit = off"
      end
      run(File.join(bin, "pg_ctl"), "-D", data, "-l", File.join(@dir, "server.log"), "-w", "-t", "30", "start")
    rescue Unavailable, SystemCallError => e
      @failure = e.is_a?(Unavailable) ? e : Unavailable.new("PostgreSQL did not start: #{e.message}")
      raise @failure
    end

    private

    # The newest server installed the Debian way, else initdb on PATH.
    def bin_dir
      debian = Dir["/usr/lib/postgresql/*/bin/initdb"].max_by { |path| path[%r{/(\d+)/bin/}, 1].to_i }
      return File.dirname(debian) if debian

      ENV["PATH"].split(File::PATH_SEPARATOR).find { |dir| File.executable?(File.join(dir, "initdb")) }
    end

    def as_other_user?
      Process.uid.zero?
    end

    # The command line, run as the postgres user when we are root.
    def command(*args)
      as_other_user? ? ["runuser", "-u", SUPERUSER, "--", *args] : args
    end

    def run(*args)
      log = File.join(@dir, "setup.log")
      ok = system(SERVER_ENV, *command(*args), chdir: @dir, in: File::NULL, %i[out err] => [log, "a"])
      return if ok

      output = [log, File.join(@dir, "server.log")].select { |f| File.exist?(f) }.map { |f| File.read(f) }.join
      raise Unavailable, "PostgreSQL setup failed: #{File.basename(args.first)} " \
                         "(#{$?})\n#{output.lines.last(20).join}"
    end

    # A watchdog, neither our child (a test's Process.wait must not see it)
    # nor in our process group, that waits for the end of a pipe we hold:
    # when this process exits or is killed, it stops the server and removes
    # the dir. It holds the other pipe until it is done, so that at a
    # normal exit we wait for it.
    def watch(bin)
      reader, @watch_pipe = IO.pipe
      reader.nonblock = false # for cat
      @watch_done, done_writer = IO.pipe
      stop = command(File.join(bin, "pg_ctl"), "-D", File.join(@dir, "data"), "-m", "fast", "-w", "stop")
      pid_file = File.join(@dir, "data", "postmaster.pid")
      script = "(trap '' INT TERM HUP; cat <&3 >/dev/null; " \
               "[ -f #{Shellwords.escape(pid_file)} ] && #{Shellwords.join(stop)} >/dev/null 2>&1; " \
               "rm -rf #{Shellwords.escape(@dir)}) &"
      Process.wait(Process.spawn(SERVER_ENV, "sh", "-c", script, 3 => reader, 4 => done_writer, in: File::NULL,
                                                     out: File::NULL, chdir: @dir, pgroup: true))
      reader.close
      done_writer.close
      owner = Process.pid
      at_exit { stop_server if Process.pid == owner }
    end

    def stop_server
      @watch_pipe.close
      @watch_done.read # EOF once the watchdog is done
    end
  end
end
