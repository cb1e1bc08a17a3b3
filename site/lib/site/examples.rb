# frozen_string_literal: true

module Site
  # The code examples of the pages. A ```ruby block runs as a program; the
  # ```text block right after it, if any, is what it must print. A block
  # whose first line is "# config.ru" is a Rack app for bin/uma: it must
  # build an app that answers GET /.
  module Examples
    BLOCK = /^```ruby\n(?<code>.*?)^```\n(?:\n```text\n(?<output>.*?)^```\n)?/m

    Example = Struct.new(:page, :index, :code, :output) do
      def rackup? = code.start_with?("# config.ru")
      def name = "#{page.relative.delete_prefix('site/pages/').delete_suffix('.md').tr('/-', '__')}_#{index}"
    end

    def self.all(pages = Page.all)
      pages.flat_map do |page|
        page.markdown.to_enum(:scan, BLOCK).map { Regexp.last_match }.each_with_index.map do |m, i|
          Example.new(page, i + 1, m[:code], m[:output])
        end
      end
    end
  end
end
