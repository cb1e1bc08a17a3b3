# frozen_string_literal: true

module TFB
  # A fixed-size pool of connections, made on first use. Waiting for a free
  # connection blocks only the caller: Thread::Queue and Thread::Mutex are
  # fiber-aware under a fiber scheduler (Uma, Falcon) and thread-safe under
  # Puma's threads.
  class Pool
    def initialize(size, &connect)
      raise ArgumentError, "pool size must be positive" unless size.positive?

      @size = size
      @connect = connect
      @idle = Thread::Queue.new
      @lock = Thread::Mutex.new
      @created = 0
    end

    # Yields a connection, then gives it back.
    def with
      conn = checkout
      yield conn
    ensure
      @idle.push(conn) if conn
    end

    private

    def checkout
      return @idle.pop unless reserve

      begin
        @connect.call
      rescue Exception # rubocop:disable Lint/RescueException
        @lock.synchronize { @created -= 1 }
        raise
      end
    end

    # Whether the caller may make a new connection (none idle, room left).
    def reserve
      @lock.synchronize do
        return false unless @idle.empty? && @created < @size

        @created += 1
        true
      end
    end
  end
end
