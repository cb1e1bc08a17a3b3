# frozen_string_literal: true

require "etc"

class UringMachine
  # Worker threads that run blocking work (C functions that release the GVL,
  # DNS lookups) so that only the fiber that asked for it waits. One pool
  # serves the whole process: it is sized to the CPU count, its threads start
  # when work arrives and no thread is idle, and a forked child gets a pool
  # of its own (threads do not survive fork).
  class WorkerPool
    @lock = Thread::Mutex.new

    class << self
      # The process's pool, created on first use (again in a forked child).
      #
      # @example
      #   UM::WorkerPool.shared.size  # => Etc.nprocessors
      def shared
        @lock.synchronize do
          if @pid != Process.pid
            @pid = Process.pid
            @shared = new(Etc.nprocessors)
          end
          @shared
        end
      end
    end

    # The most threads the pool starts.
    #
    # @example
    #   UM::WorkerPool.new(3).size  # => 3
    attr_reader :size

    # A pool of at most +size+ worker threads (none started yet).
    #
    # @example
    #   pool = UM::WorkerPool.new(2)
    #   pool.size  # => 2
    def initialize(size)
      raise ArgumentError, "a pool needs at least one thread, not #{size}" unless size.is_a?(Integer) && size.positive?

      @size = size
      @jobs = Thread::Queue.new
      @threads = []
      @lock = Thread::Mutex.new
    end

    # Queues the job (anything that responds to #call; it must not raise)
    # for the next free worker thread.
    #
    # @example
    #   q = Thread::Queue.new
    #   UM::WorkerPool.new(1).submit(-> { q << Thread.current.name })
    #   q.pop  # => "um-worker"
    def submit(job)
      @lock.synchronize do
        @threads.select!(&:alive?)
        start_worker if @jobs.num_waiting <= @jobs.size && @threads.size < @size
        @jobs << job
      end
      self
    end

    # The number of worker threads started so far.
    #
    # @example
    #   pool = UM::WorkerPool.new(4)
    #   pool.thread_count  # => 0 until work arrives
    def thread_count
      @lock.synchronize { @threads.count(&:alive?) }
    end

    private

    def start_worker
      thread = Thread.new do
        while (job = @jobs.pop)
          job.call
        end
      end
      thread.name = "um-worker"
      thread.report_on_exception = false
      @threads << thread
    end
  end
end
