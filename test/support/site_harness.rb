# frozen_string_literal: true

require "ferrum"
require "rbconfig"
require "socket"
require "tmpdir"
require_relative "../../site/lib/site"

# The built site, served by Uma in a child process, and a headless Chromium
# to look at it: made once for the test files that ask, torn down at exit.
module SiteHarness
  # Chromium and rsvg-convert are not built with the sanitizer: they get an
  # environment without its runtime.
  PLAIN_ENV = { "LD_PRELOAD" => nil, "ASAN_OPTIONS" => nil, "UBSAN_OPTIONS" => nil }.freeze
  LOAD_DIRS = [
    File.dirname($LOADED_FEATURES.grep(/um_ext\.so\z/).first),
    File.expand_path("../../lib", __dir__),
    File.expand_path("../../uma/lib", __dir__),
    File.expand_path("../../site/lib", __dir__)
  ].freeze

  class << self
    # The default encodings before and after the build.
    attr_reader :encodings

    # Builds the site into a temporary directory (once).
    def out
      @out ||= begin
        dir = Dir.mktmpdir("site")
        at_exit { FileUtils.rm_rf(dir) }
        before = [Encoding.default_external, Encoding.default_internal]
        Site::Builder.new(out: dir).build
        @encodings = [before, [Encoding.default_external, Encoding.default_internal]]
        dir
      end
    end

    # Serves the built site with Uma in a child process and opens a headless
    # Chromium; yields the base URL and the browser, then stops and reaps
    # both, so no child of this process outlives the test (other tests wait
    # for "any child" and expect ECHILD when theirs are gone).
    def session
      server = start_server(out)
      browser = Ferrum::Browser.new(
        browser_path: chromium, headless: true, window_size: [1280, 900],
        process_timeout: 60, timeout: 30, env: PLAIN_ENV,
        browser_options: { "no-sandbox" => nil, "disable-dev-shm-usage" => nil }
      )
      yield "http://127.0.0.1:#{server[:port]}", browser
    ensure
      browser&.quit
      stop(server[:pid]) if server
    end

    private

    def start_server(dir)
      port = free_port
      script = <<~RUBY
        require "uma"
        require "site/static_app"
        config = Uma::Config.new(host: "127.0.0.1", port: #{port})
        Uma::Server.new(Site::StaticApp.new(#{dir.dump}), config, Uma::Listener.open_all(config)).trap_signals.run
      RUBY
      uma_ext = $LOADED_FEATURES.grep(/uma_ext\.so\z/).first
      dirs = LOAD_DIRS + (uma_ext ? [File.dirname(uma_ext)] : [])
      pid = Process.spawn(RbConfig.ruby, *dirs.flat_map { ["-I", _1] }, "-rbundler/setup", "-e", script,
                          in: File::NULL, out: File::NULL)
      wait_until_listening(port, pid)
      { pid: pid, port: port }
    rescue StandardError
      stop(pid) if pid
      raise
    end

    def chromium
      ENV.fetch("PATH").split(":").map { File.join(_1, "chromium") }.find { File.executable?(_1) } or
        raise "chromium is not installed (bin/setup installs it)"
    end

    def free_port
      server = TCPServer.new("127.0.0.1", 0)
      server.addr[1]
    ensure
      server&.close
    end

    def wait_until_listening(port, pid)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
      loop do
        TCPSocket.new("127.0.0.1", port).close
        return
      rescue Errno::ECONNREFUSED
        raise "the site server (pid #{pid}) exited" if Process.waitpid(pid, Process::WNOHANG)
        raise "the site server did not listen within 30 s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.05
      end
    end

    def stop(pid)
      Process.kill(:TERM, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
  end
end
