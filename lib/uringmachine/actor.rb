# frozen_string_literal: true

class UringMachine
  # Starts an actor: a fiber that owns +target+ and runs its methods, one
  # message at a time, in the order the messages arrived. Returns the
  # UM::Actor (a Fiber). Other fibers, of this or any other thread, talk to
  # it with Actor#call and Actor#cast.
  #
  #   counter = machine.spin_actor(Counter.new)
  #   counter.cast(:add, 2)
  #   counter.call(:total)   # => 2
  #
  # @example
  #   actor = machine.spin_actor(counter)
  #   actor.cast(:add, 2)
  #   actor.call(:total)  # => 2
  def spin_actor(target)
    actor = spin(nil, Actor) { |_| Fiber.current.__send__(:run_actor) }
    actor.__send__(:bind, self, target)
  end

  # A fiber that runs the methods of its target for the messages of its
  # mailbox (a UM::Queue); its methods use Kernel.raise, as #raise is
  # Fiber#raise here. An exception raised by a #call goes back to the
  # caller and the actor goes on; one raised by a #cast ends the actor (its
  # fiber's result is that exception, as for any fiber). An actor that ended,
  # by #stop or by a failed cast, answers later and still queued calls with
  # UM::Error.
  class Actor < Fiber
    # Runs +name+ with the arguments in the actor and returns its value, or
    # raises what it raised. Waits (only the calling fiber) for the answer.
    #
    # @example
    #   actor = machine.spin_actor([])
    #   actor.call(:push, 1)  # => [1]
    #   actor.call(:size)     # => 1
    def call(name, *args, **kwargs)
      ::Kernel.raise UringMachine::Error, "an actor cannot call itself (it would wait for its own answer)" if Fiber.current == self

      reply = UringMachine::Queue.new
      send_message([:call, reply, name, args, kwargs])
      # Queue operations from another thread run on that thread's machine.
      status, value = @machine.shift(reply)
      ::Kernel.raise value if status == :error

      value
    end

    # Queues +name+ with the arguments for the actor and returns self at once.
    #
    # @example
    #   actor = machine.spin_actor([])
    #   actor.cast(:push, 1)  # => actor, at once
    #   actor.call(:size)     # => 1
    def cast(name, *args, **kwargs)
      send_message([:cast, nil, name, args, kwargs])
      self
    end

    # Asks the actor to end after the messages already queued; returns self.
    # Join the actor to wait for it: its result is the target.
    #
    # @example
    #   actor = machine.spin_actor([])
    #   actor.cast(:push, 1)
    #   actor.stop
    #   machine.join(actor)  # => [1], the target
    def stop
      send_message([:stop])
      self
    end

    private

    def bind(machine, target)
      @machine = machine
      @target = target
      self
    end

    def send_message(message)
      # A UM::Mutex: the push may switch fibers while it is held.
      @machine.synchronize(@lock) do
        ::Kernel.raise UringMachine::Error, "the actor has stopped" if @stopped

        @machine.push(@mailbox, message)
      end
    end

    def run_actor
      loop do
        kind, reply, name, args, kwargs = @machine.shift(@mailbox)
        break if kind == :stop

        handle_message(kind, reply, name, args, kwargs)
      end
      @target
    ensure
      refuse_pending_calls
    end

    def handle_message(kind, reply, name, args, kwargs)
      value = @target.__send__(name, *args, **kwargs)
      @machine.push(reply, [:ok, value]) if kind == :call
    rescue StandardError => e
      ::Kernel.raise unless kind == :call

      @machine.push(reply, [:error, e])
    end

    # No message is left unanswered once the actor ends.
    def refuse_pending_calls
      @machine.synchronize(@lock) { @stopped = true }
      while @mailbox.count.positive?
        kind, reply, = @machine.shift(@mailbox)
        @machine.push(reply, [:error, UringMachine::Error.new("the actor has stopped")]) if kind == :call
      end
    end

    def initialize(*, **, &)
      super
      @mailbox = UringMachine::Queue.new
      @lock = UringMachine::Mutex.new
      @stopped = false
    end
  end
end
