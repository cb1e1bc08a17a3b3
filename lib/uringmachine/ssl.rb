# frozen_string_literal: true

class UringMachine
  # call-seq: ssl_set_bio(ssl_socket) -> ssl_socket
  #
  # Routes the TLS record I/O of an OpenSSL::SSL::SSLSocket through the
  # machine: a BIO whose reads and writes are recv and send operations on
  # the socket's fd, suspending only the calling fiber. Afterwards the
  # socket's own #connect, #accept, #write, #readpartial, #gets, #close...
  # work unchanged, on the ring, and several fibers may use the socket at
  # once (a reader and a writer, as with threads on a core SSLSocket). Call
  # it before #connect/#accept (or later: the BIO takes over from the next
  # record). Calling it again does nothing (or moves the socket to this
  # machine).
  #
  # Raises TypeError for anything but an OpenSSL::SSL::SSLSocket.
  #
  # @example
  #   ssl = OpenSSL::SSL::SSLSocket.new(Socket.for_fd(fd), ctx)
  #   machine.ssl_set_bio(ssl)
  #   ssl.connect
  #   ssl.write("ping")  # over io_uring
  def ssl_set_bio(ssl_socket)
    install_ssl_bio(ssl_socket)
  end

  # Extends an SSLSocket whose BIO runs on a machine (installing the BIO,
  # by #ssl_set_bio, #ssl_read, #ssl_write or UM::IO, extends the socket).
  #
  # One fiber at a time runs OpenSSL on the socket, and only for one attempt
  # that does not wait: the *_nonblock methods run as they are (so
  # read_nonblock gives IO::WaitReadable, or :wait_readable, as on a plain
  # socket), and the blocking ones loop over them, waiting for the socket on
  # the machine outside OpenSSL. Writers take turns, a whole write at a
  # time.
  #
  # When an exception (a timeout, a terminate) interrupts a BIO operation,
  # OpenSSL sees the operation fail with EINTR and the socket method raises
  # its own error, or ignores it; this raises the original exception
  # instead, once the method is done.
  module SSLSocketOnRing
    %i[connect_nonblock accept_nonblock sysread_nonblock syswrite_nonblock].each do |name|
      define_method(name) do |*args, **opts, &block|
        UringMachine.__send__(:ssl_call, self, Thread.current[:__um_ssl_blocking]) do
          UringMachine.__send__(:ssl_interruption, self) # a stale one (from #stop) is dropped
          begin
            result = super(*args, **opts, &block)
            interruption = UringMachine.__send__(:ssl_interruption, self)
            interruption ? __um_interrupted(interruption.first, result) : result
          rescue SystemCallError, IOError, OpenSSL::SSL::SSLError
            interruption = UringMachine.__send__(:ssl_interruption, self)
            raise unless interruption

            __um_interrupted(interruption.first, nil)
          end
        end
      end
    end

    # call-seq: connect -> self
    #
    # The TLS handshake as a client, on the machine.
    def connect
      __um_retry { connect_nonblock(exception: false) }
    end

    # call-seq: accept -> self
    #
    # The TLS handshake as a server, on the machine.
    def accept
      __um_retry { accept_nonblock(exception: false) }
    end

    # call-seq: sysread(length, buffer = nil) -> String
    #
    # Reads up to +length+ decrypted bytes, waiting for them on the machine;
    # raises EOFError at the end of the stream.
    def sysread(length, buffer = nil)
      result = __um_retry { sysread_nonblock(length, buffer, exception: false) }
      raise EOFError, "end of file reached" if result.nil?

      result
    end

    # call-seq: syswrite(string) -> Integer
    #
    # Writes the string (or as much of it as one TLS write takes), waiting
    # on the machine while the socket's send buffer is full.
    def syswrite(string)
      UringMachine.__send__(:ssl_writing, self) do
        __um_retry { syswrite_nonblock(string, exception: false) }
      end
    end

    # call-seq: sysclose -> nil
    #
    # Sends close_notify (waiting while the send buffer is full) and closes
    # the socket, and its IO if sync_close is set, even when interrupted.
    def sysclose
      return if closed?

      begin
        UringMachine.__send__(:ssl_call, self, false) { UringMachine.__send__(:ssl_interruption, self) }
        UringMachine.__send__(:ssl_shutdown, self)
      ensure
        io.close if sync_close && !io.closed?
      end
      nil
    end

    private

    # Runs the block (a *_nonblock call with exception: false) until it
    # stops asking to wait for the socket. Meanwhile the BIO leaves reading
    # the socket to UringMachine.ssl_wait: one recv that waits, outside
    # OpenSSL.
    def __um_retry
      blocking = Thread.current[:__um_ssl_blocking] # fiber-local
      Thread.current[:__um_ssl_blocking] = true
      loop do
        result = yield
        case result
        when :wait_readable then woken = UringMachine.__send__(:ssl_wait, self, false)
        when :wait_writable then woken = UringMachine.__send__(:ssl_wait, self, true)
        else return result
        end
        return woken unless woken.nil?
      end
    ensure
      Thread.current[:__um_ssl_blocking] = blocking
    end

    def __um_interrupted(value, result)
      raise value if value.is_a?(Exception)

      result || value
    end
  end
end
