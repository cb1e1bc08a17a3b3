# frozen_string_literal: true

require "set"

module Uma
  # One worker: a machine with UM::FiberScheduler set, a fiber accepting on
  # each listener and a fiber per connection.
  class Server
    # The Rack app, the Uma::Config, and the worker's machine (nil until
    # #run made it).
    #
    # @example
    #   server.app                  # => the Rack app
    #   server.config.idle_timeout  # => 20.0
    #   server.machine              # => the UringMachine #run made
    attr_reader :app, :config, :machine

    STOP_SIGNALS = %i[TERM INT QUIT].freeze

    # A worker serving +app+ on the +listeners+ (Uma::Listener) with the
    # settings of +config+ (Uma::Config). Nothing runs until #run.
    #
    # @example
    #   config = Uma::Config.new(host: "127.0.0.1", port: 9292)
    #   server = Uma::Server.new(app, config, Uma::Listener.open_all(config))
    def initialize(app, config, listeners)
      @app = app
      @config = config
      @listeners = listeners
      @connections = Set.new
      @stopping = false
      @stop_requested = false
      @errors = $stderr
    end

    # Whether a graceful stop has begun (no more accepting).
    #
    # @example
    #   server.stopping?  # => false until a graceful stop begins
    def stopping? = @stopping

    # Whether RACK_ENV is development (the default): a 500 then carries the
    # error's message.
    #
    # @example
    #   ENV["RACK_ENV"] = "production"
    #   server.development?  # => false
    def development? = (ENV["RACK_ENV"] || "development") == "development"

    # Asks for a graceful stop (signal-safe: only sets a flag).
    #
    # @example
    #   Thread.new { server.run }
    #   server.stop!  # #run returns once the requests in flight are done
    def stop!
      @stop_requested = true
    end

    # TERM, INT and QUIT ask for a graceful stop of this worker.
    #
    # @example
    #   server.trap_signals.run  # TERM, INT or QUIT stop it gracefully
    def trap_signals
      STOP_SIGNALS.each { |sig| trap(sig) { stop! } }
      self
    end

    # The env fields every request shares.
    #
    # @example
    #   server.base_env["rack.multithread"]  # => false
    def base_env
      @base_env ||= {
        "SCRIPT_NAME" => "",
        "rack.url_scheme" => "http",
        "rack.errors" => @errors,
        "rack.hijack?" => true,
        "rack.multithread" => false,
        "rack.multiprocess" => @config.workers > 1,
        "rack.run_once" => false,
        "SERVER_NAME" => "localhost",
        "SERVER_PORT" => @config.port.to_s
      }.freeze
    end

    # Writes an error the app raised, with the request and the backtrace, to
    # rack.errors ($stderr).
    #
    # @example
    #   server.report(env, error)  # prints "RuntimeError: boom (GET /)" and the backtrace to $stderr
    def report(env, error)
      @errors.puts "#{error.class}: #{error.message} (#{env["REQUEST_METHOD"]} #{env["PATH_INFO"]})"
      @errors.puts error.backtrace.map { |line| "\t#{line}" } if error.backtrace
      @errors.flush
    end

    # Forgets a connection that ended (called by Uma::Connection).
    #
    # @example
    #   server.connection_done(connection)  # called by the connection as it ends
    def connection_done(connection)
      @connections.delete(connection)
    end

    # Runs until a graceful stop has finished.
    #
    # @example
    #   server = Uma::Server.new(app, config, listeners)
    #   server.trap_signals.run  # returns after a graceful stop
    def run
      @machine = UM.new
      scheduler = UM::FiberScheduler.new(@machine)
      Fiber.set_scheduler(scheduler)
      @acceptors = @listeners.map { |listener| Fiber.schedule { accept_loop(listener) } }
      Fiber.schedule { watch }
      Fiber.set_scheduler(nil) # runs every fiber to its end
    end

    private

    def accept_loop(listener)
      # One accept at a time, re-armed after each connection. A multishot
      # accept on the shared socket kept one worker in front of the kernel's
      # wait queue: it took nearly every connection (measured against
      # SO_REUSEPORT per worker too: see uma/README.md, "Accepting").
      until @stopping
        fd = @machine.accept(listener.fileno)
        Fiber.schedule { serve_connection(fd) }
      end
    rescue Stop
      nil
    end

    def serve_connection(fd)
      connection = Connection.new(self, fd)
      @connections << connection
      connection.run
    end

    # Seconds between two sweeps of the connections' read deadlines.
    SWEEP = 0.1

    # Polls for a stop request (signal handlers only set a flag) and times
    # out slow reads, then drains: stops accepting, ends idle connections,
    # waits for the others.
    def watch
      until @stop_requested
        @machine.sleep(SWEEP)
        sweep
      end
      @stopping = true
      @acceptors.each { |fiber| @machine.schedule(fiber, Stop.new) if fiber.alive? }
      deadline = Uma.now + @config.shutdown_timeout
      until @connections.empty?
        late = Uma.now > deadline
        @connections.each { |c| c.stop if late || c.idle? }
        @machine.sleep(0.02)
        sweep
      end
    end

    # One timer for every connection rather than one per read: each read
    # notes its deadline, this shuts down the sockets past theirs.
    def sweep
      now = Uma.now
      @connections.each { |c| c.check_deadline(now) }
    end
  end
end
