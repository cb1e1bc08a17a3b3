# frozen_string_literal: true

require "open3"
require "tmpdir"

module Bench
  # Draws the PNG charts with gnuplot from the same figures as the JSON.
  module Chart
    COLORS = {
      "threads" => "#8c564b", "um_fs" => "#1f77b4", "um" => "#2ca02c",
      "async_epoll" => "#ff7f0e", "async_uring" => "#d62728", "c" => "#7f7f7f",
      "uma" => "#2ca02c", "puma" => "#8c564b", "falcon" => "#ff7f0e"
    }.freeze

    # medians: { scenario name => { impl => Result } }; one bar chart per
    # scenario, each with its own scale (ops/s differ by orders of magnitude
    # between scenarios).
    def self.scenarios(medians, dir, title)
      Dir.mktmpdir("um-bench-chart") { scenarios_in(it, medians, dir, title) }
    end

    def self.scenarios_in(tmp, medians, dir, title)
      data = medians.map do |name, by_impl|
        path = File.join(tmp, "#{name}.dat")
        File.write(path, by_impl.map { |impl, r| "#{impl} #{r.ops_per_s / 1e6} #{COLORS.fetch(impl).delete('#').to_i(16)}\n" }.join)
        [name, path]
      end
      cols = [data.size, 3].min
      rows = (data.size + cols - 1) / cols
      plots = data.map do |name, path|
        <<~GP
          set title "#{name}"
          plot "#{path}" using 0:2:3:xtic(1) with boxes lc rgb variable notitle, \\
               "" using 0:2:(sprintf("%.3g", $2)) with labels offset 0,0.7 notitle
        GP
      end
      gnuplot(<<~GP, File.join(dir, "scenarios.png"))
        set terminal pngcairo noenhanced size #{cols * 420},#{rows * 320} font ",9"
        set output "#{File.join(dir, 'scenarios.png')}"
        set multiplot layout #{rows},#{cols} title "#{title}"
        set style fill solid 0.8 border -1
        set boxwidth 0.6
        set ylabel "million ops/s (higher is better)"
        set yrange [0:*]
        set offsets 0.5, 0.5, graph 0.1, 0
        set xtics rotate by -30 scale 0
        set grid ytics
        #{plots.join}
        unset multiplot
      GP
    end

    # entries: [{work:, groups:, impl:, ops_per_s:, rss_per_group_kb:}]
    def self.cost(entries, dir, title)
      Dir.mktmpdir("um-bench-chart") { cost_in(it, entries, dir, title) }
    end

    def self.cost_in(tmp, entries, dir, title)
      works = entries.map { it[:work] }.uniq
      series = entries.group_by { [it[:work], it[:impl]] }.to_h do |(work, impl), list|
        path = File.join(tmp, "cost_#{work}_#{impl}.dat")
        File.write(path, list.map { "#{it[:groups]} #{it[:ops_per_s]} #{[it[:rss_per_group_kb], 0.01].max}\n" }.join)
        [[work, impl], path]
      end
      plot = ->(work, column) {
        series.select { |(w, _), _| w == work }.map do |(_, impl), path|
          %("#{path}" using 1:#{column} with linespoints lw 2 pt 7 lc rgb "#{COLORS.fetch(impl)}" title "#{impl}")
        end.join(", ")
      }
      panels = works.map { |w| "set title \"#{w}: operations per second\"\nset ylabel \"ops/s\"\nplot #{plot.(w, 2)}\n" } +
               works.map { |w| "set title \"#{w}: memory per group\"\nset ylabel \"RSS KiB per group\"\nplot #{plot.(w, 3)}\n" }
      gnuplot(<<~GP, File.join(dir, "cost.png"))
        set terminal pngcairo noenhanced size #{works.size * 520},640 font ",9"
        set output "#{File.join(dir, 'cost.png')}"
        set multiplot layout 2,#{works.size} title "#{title}"
        set logscale xy
        set xlabel "groups (one writer and one reader each)"
        set grid
        set key top right
        #{panels.join}
        unset multiplot
      GP
    end

    # A clustered bar chart: one group of bars per label, one bar per series
    # (series: { name => [value per label] }); log: a logarithmic y axis.
    def self.grouped(labels, series, png, title, ylabel, log: false)
      Dir.mktmpdir("um-bench-chart") do |tmp|
        data = File.join(tmp, "grouped.dat")
        File.write(data, labels.each_with_index.map { |label, i|
          ([label.inspect] + series.values.map { [it[i], 0.1].max }).join(" ") + "\n"
        }.join)
        columns = series.keys.each_with_index.map do |name, i|
          %("#{data}" using #{i + 2}:xtic(1) title "#{name}"#{" lc rgb \"#{COLORS[name]}\"" if COLORS[name]})
        end
        gnuplot(<<~GP, png)
          set terminal pngcairo noenhanced size #{[labels.size * 110, 700].max},480 font ",9"
          set output "#{png}"
          set title "#{title}"
          set style data histogram
          set style histogram clustered gap 1
          set style fill solid 0.8 border -1
          set ylabel "#{ylabel}"
          #{log ? "set logscale y" : "set yrange [0:*]"}
          set xtics rotate by -30 scale 0
          set grid ytics
          set key top right
          plot #{columns.join(", ")}
        GP
      end
    end

    def self.gnuplot(script, png)
      output, status = Open3.capture2e("gnuplot", stdin_data: script)
      raise "gnuplot failed drawing #{png}: #{output}" unless status.success? && File.size?(png)
    end
  end
end
