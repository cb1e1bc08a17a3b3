# frozen_string_literal: true

require "timeout"
require_relative "values"
require_relative "world"
require_relative "actions"

module UMFuzz
  # One fuzz case, run inside a forked child: builds a World, performs
  # +steps+ random actions (each on the main fiber under a short timeout, or
  # in a new fiber left to wait), then terminates the fibers and collects
  # the garbage. Every step is logged to +log_path+ before it runs, so the
  # parent can show the last calls of a child that crashed or hung.
  class Case
    # Exit status of a child whose case raised an exception of a class the
    # API must not raise (not a StandardError, not UM::Terminate).
    UNEXPECTED_EXIT = 3

    # Exit status of a child whose fibers did not end after #terminate.
    TEARDOWN_EXIT = 4

    # How long a step on the main fiber may wait.
    STEP_TIMEOUT = 0.05

    def initialize(seed, log_path, steps)
      @seed = seed
      @steps = steps
      @log = File.open(log_path, "w")
      @log.sync = true
    end

    # Runs the case; returns the exit status for the child.
    def run
      Warning[:experimental] = false
      Thread.report_on_exception = false
      log "seed #{@seed}, #{@steps} steps"
      rng = Random.new(@seed)
      Dir.mktmpdir("um-fuzz") do |dir|
        @world = World.new(dir).populate
        @unexpected = @world.unexpected
        @world.add_ssl_pair
        @values = Values.new(rng, @world)
        @actions = Actions.new(@world, @values, @log)
        @steps.times { |i| step(i, rng) }
        return TEARDOWN_EXIT unless teardown
      end
      report_unexpected
    end

    private

    def log(line)
      @log.write("#{line}\n")
    end

    def step(index, rng)
      desc, action = @actions.pick
      if rng.rand < 0.3
        log "#{index} [fiber] #{desc}"
        @world.track_fiber(@world.machine.spin { Actions.guarded(@world) { action.call } })
      else
        log "#{index} [main] #{desc}"
        result = @world.machine.timeout(STEP_TIMEOUT, FuzzError) { action.call }
        log "  -> #{brief(result)}"
      end
    rescue StandardError, UM::Terminate => e
      log "  -> #{e.class}: #{e.message[0, 100]}"
    rescue Exception => e # rubocop:disable Lint/RescueException
      log "  -> UNEXPECTED #{e.class}: #{e.message[0, 200]}"
      @world.unexpected << e
    end

    # Ends every fiber still alive, then lets the GC free the objects of
    # the case (machines with cancelled operations included).
    def teardown
      log "teardown"
      machine = @world.machine
      return false unless end_fibers(machine)

      close_ssl_pairs
      @world = @actions = @values = nil
      GC.start
      GC.compact
      log "done"
      true
    end

    # The TLS sockets' fds may have been closed (or closed and reused) by
    # the case's calls: closing them then fails, which is fine here.
    def close_ssl_pairs
      @world.ssl_pairs.flatten.each do |io|
        io.close unless io.closed?
      rescue StandardError
        nil
      end
    end

    # Terminates the live fibers and waits for them (a Fiber#raise aimed at
    # the main fiber may still arrive meanwhile); false when some are still
    # alive after a few seconds.
    def end_fibers(machine)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
      until (live = machine.fiber_set.to_a).empty?
        if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
          log "teardown: #{live.size} fibers still alive after #terminate"
          return false
        end
        begin
          machine.terminate(*live)
          machine.timeout(1, FuzzError) { machine.join(*live) }
        rescue StandardError, UM::Terminate => e
          log "teardown: #{e.class}: #{e.message}"
        end
      end
      machine.sleep(0.01)
      true
    end

    # The exceptions no call may raise, with where they came from.
    def report_unexpected
      return 0 if @unexpected.empty?

      @unexpected.each do |e|
        log "UNEXPECTED #{e.class}: #{e.message[0, 200]}"
        e.backtrace&.first(8)&.each { |line| log "    #{line}" }
      end
      UNEXPECTED_EXIT
    end

    def brief(value)
      text = value.is_a?(Integer) || value.nil? || value.is_a?(Symbol) ? value.inspect : value.class.name
      text.to_s[0, 60]
    end
  end
end
