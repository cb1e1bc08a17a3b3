# frozen_string_literal: true

require "optparse"
require "etc"

module Uma
  # The `uma` command: options, environment, loading config.ru, starting.
  class CLI
    # Runs the uma command with +argv+; returns the exit status.
    #
    # @example
    #   exit Uma::CLI.start(ARGV)  # what the uma command does
    def self.start(argv) = new.start(argv)

    # Parses +argv+, loads the app, listens, and serves with one worker or a
    # Uma::Cluster until stopped. Returns 0, or 1 after printing a setup error
    # (bad option, missing config.ru, address in use).
    #
    # @example
    #   Uma::CLI.new.start(["-p", "9292", "config.ru"])  # serves until stopped; => 0, or 1 on a setup error
    def start(argv)
      config = parse(argv)
      app = load_app(config.rackup)
      listeners = Listener.open_all(config)
      workers = config.workers
      listeners.each do |listener|
        $stdout.puts "uma #{VERSION} listening on #{listener.url}, #{workers} worker#{"s" if workers != 1}"
      end
      $stdout.flush
      if workers == 1
        Server.new(app, config, listeners).trap_signals.run
      else
        Cluster.new(app, config, listeners).run
      end
      0
    rescue Error, OptionParser::ParseError => e
      warn "uma: #{e.message}"
      1
    end

    # The Uma::Config the options and environment ($PORT, $WEB_CONCURRENCY)
    # give; the config.ru path is the one argument left.
    #
    # @example
    #   config = Uma::CLI.new.parse(["-b", "::1", "-p", "8080", "-w", "2"])
    #   config.binds    # => ["[::1]:8080"]
    #   config.workers  # => 2
    def parse(argv)
      config = Config.new(port: env_int("PORT") || 9292, workers: workers_value(ENV["WEB_CONCURRENCY"] || "1", "WEB_CONCURRENCY"))
      hosts = []
      parser = OptionParser.new do |o|
        o.banner = "Usage: uma [options] [CONFIG_RU]"
        o.on("-b", "--bind HOST", "address to listen on (default 0.0.0.0; :: and unix:PATH too)") { |v| hosts << v }
        o.on("-p", "--port PORT", Integer, "port (default $PORT, else 9292)") do |v|
          raise Error, "bad port #{v}" unless (1..65_535).cover?(v)

          config.port = v
        end
        o.on("-w", "--workers N", "worker processes (default $WEB_CONCURRENCY, else 1; auto: one per CPU)") do |v|
          config.workers = workers_value(v, "--workers")
        end
        o.on("-e", "--environment ENV", "sets RACK_ENV and RAILS_ENV") do |v|
          ENV["RACK_ENV"] = ENV["RAILS_ENV"] = v
        end
        o.on("--max-body BYTES", Integer, "largest request body accepted (413 beyond)") { |v| config.max_body = v }
        o.on("--head-timeout SECONDS", Float, "time to receive a request head") { |v| config.head_timeout = v }
        o.on("--idle-timeout SECONDS", Float, "time a keep-alive connection may stay idle") { |v| config.idle_timeout = v }
        o.on("--body-timeout SECONDS", Float, "time between two pieces of a request body") { |v| config.body_timeout = v }
        o.on("--shutdown-timeout SECONDS", Float, "time a graceful stop waits for requests in flight") { |v| config.shutdown_timeout = v }
        o.on("-h", "--help", "this help") do
          puts o
          exit 0
        end
        o.on("-v", "--version", "the version") do
          puts "uma #{VERSION}"
          exit 0
        end
      end
      rest = parser.parse(argv)
      raise Error, "too many arguments: #{rest.join(" ")}" if rest.size > 1

      config.rackup = rest.first || "config.ru"
      config.binds = hosts.map { |h| h.start_with?("unix:") ? h : config.format_address(h, config.port) }
      config
    end

    private

    def env_int(name)
      value = ENV[name]
      return nil if value.nil? || value.empty?

      Integer(value, 10)
    rescue ArgumentError
      raise Error, "#{name} must be a number (is #{value.inspect})"
    end

    def workers_value(value, source)
      return Etc.nprocessors if value == "auto"

      n = Integer(value, 10)
      raise Error, "#{source} must be at least 1 (given #{n})" if n < 1

      n
    rescue ArgumentError
      raise Error, "#{source} must be a number or auto (given #{value.inspect})"
    end

    def load_app(path)
      raise Error, "#{path} not found" unless File.file?(path)

      require "rack"
      require "rack/builder"
      app = ::Rack::Builder.parse_file(path)
      app = app.first if app.is_a?(Array) # Rack 2's [app, options]
      raise Error, "#{path} does not run an app" unless app.respond_to?(:call)

      app
    rescue Error
      raise
    rescue ScriptError, StandardError => e
      raise Error, "cannot load #{path}: #{e.class}: #{e.message.lines.first&.chomp}"
    end
  end
end
